import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import pako from 'pako';
import * as fflate from 'fflate';
import {
  init, gzip, gunzip, deflate, inflate, GzipStream, GunzipStream, DeflateContext, InflateContext, SwitchboardError,
} from '../../js/index.js';

await init();

function corpus(n, seed = 1) {
  const words = ['{"user":', '"alice"', ',"text":"', 'hello', ' world', '"}', '\n', '42', 'é', '😀'];
  let s = '';
  let x = seed;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += words[x % words.length];
  }
  return new TextEncoder().encode(s).subarray(0, n);
}

async function viaStream(bytes, stream) {
  const out = await new Response(new Blob([bytes]).stream().pipeThrough(stream)).arrayBuffer();
  return new Uint8Array(out);
}

const SIZES = [0, 1, 230, 4096, 65536, 300000];

test('gzip round trips with node:zlib, pako, fflate and CompressionStream at levels 1-9', async () => {
  for (const size of SIZES) {
    const src = corpus(size, size + 3);
    for (let level = 1; level <= 9; level++) {
      const ours = gzip(src, { level });
      assert.deepEqual(new Uint8Array(zlib.gunzipSync(ours)), src, `node gunzip level ${level} size ${size}`);
      assert.deepEqual(pako.ungzip(ours), src);
      assert.deepEqual(fflate.gunzipSync(ours), src);
      assert.deepEqual(gunzip(zlib.gzipSync(src, { level })), src);
      assert.deepEqual(gunzip(pako.gzip(src, { level })), src);
      assert.deepEqual(gunzip(fflate.gzipSync(src, { level })), src);
    }
    assert.deepEqual(await viaStream(gzip(src), new DecompressionStream('gzip')), src);
    assert.deepEqual(gunzip(await viaStream(src, new CompressionStream('gzip'))), src);
  }
});

test('deflate and deflate-raw formats match the platform', async () => {
  const src = corpus(20000, 9);
  assert.deepEqual(new Uint8Array(zlib.inflateSync(deflate(src))), src);
  assert.deepEqual(inflate(zlib.deflateSync(src)), src);
  assert.deepEqual(new Uint8Array(zlib.inflateRawSync(gzip(src, { format: 'deflate-raw' }))), src);
  assert.deepEqual(gunzip(zlib.deflateRawSync(src), { format: 'deflate-raw' }), src);
  assert.deepEqual(await viaStream(deflate(src), new DecompressionStream('deflate')), src);
  assert.deepEqual(gunzip(await viaStream(src, new CompressionStream('deflate-raw')), { format: 'deflate-raw' }), src);
});

test('strings are UTF-8 encoded; ArrayBuffer and other views are accepted', () => {
  const text = 'héllo wörld 😀 '.repeat(50);
  assert.equal(zlib.gunzipSync(gzip(text)).toString('utf8'), text);
  const bytes = corpus(1000);
  assert.deepEqual(gunzip(gzip(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 1000))), bytes);
  const u16 = new Uint16Array([1, 2, 3, 65535]);
  assert.deepEqual(gunzip(gzip(u16)), new Uint8Array(u16.buffer));
  assert.throws(() => gzip(42), (e) => e instanceof SwitchboardError && e.code === 'INVALID');
  assert.throws(() => gzip('x', { level: 11 }), { code: 'INVALID' });
  assert.throws(() => gzip('x', { format: 'brotli' }), { code: 'INVALID' });
});

test('multi-member gzip is read fully, from any producer', () => {
  const a = corpus(5000, 1);
  const b = corpus(7000, 2);
  const cat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));
  const mixed = cat(gzip(a), zlib.gzipSync(b), pako.gzip(a));
  assert.deepEqual(gunzip(mixed), cat(a, b, a));
  // and node reads ours the same way
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(cat(gzip(a), gzip(b)))), cat(a, b));
});

test('each bad input has its own error code and the codec stays usable', () => {
  const src = corpus(50000, 5);
  const good = gzip(src);
  const bomb = zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024));
  assert.throws(() => gunzip(bomb, { maxOutputBytes: 1024 * 1024 }), { code: 'TOO_LARGE' });
  assert.throws(() => gunzip(good.subarray(0, good.length - 3)), { code: 'TRUNCATED' });
  assert.throws(() => gunzip(good.subarray(0, 20)), { code: 'TRUNCATED' });
  const badCrc = good.slice();
  badCrc[badCrc.length - 6] ^= 0x40;
  assert.throws(() => gunzip(badCrc), { code: 'BAD_CHECKSUM' });
  const badLen = good.slice();
  badLen[badLen.length - 1] ^= 0x01;
  assert.throws(() => gunzip(badLen), { code: 'BAD_CHECKSUM' });
  const trailing = new Uint8Array([...good, 0x00, 0x01, 0x02]);
  assert.throws(() => gunzip(trailing), { code: 'TRAILING_DATA' });
  assert.throws(() => gunzip(new TextEncoder().encode('not gzip at all')), { code: 'CORRUPT' });
  assert.deepEqual(gunzip(good), src);
  assert.equal(gunzip(bomb).length, 20 * 1024 * 1024);
});

test('GzipStream / GunzipStream are drop-in TransformStreams with a level and a cap', async () => {
  const src = corpus(200000, 8);
  const z = await viaStream(src, new GzipStream({ level: 9 }));
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(z)), src);
  assert.deepEqual(await viaStream(z, new GunzipStream()), src);
  assert.deepEqual(await viaStream(await viaStream(src, new CompressionStream('gzip')), new GunzipStream()), src);
  // many small chunks
  const chunks = new ReadableStream({
    start(c) {
      for (let i = 0; i < src.length; i += 333) c.enqueue(src.subarray(i, i + 333));
      c.close();
    },
  });
  const out = new Uint8Array(await new Response(chunks.pipeThrough(new GzipStream())).arrayBuffer());
  assert.deepEqual(gunzip(out), src);
  // cap
  const bomb = zlib.gzipSync(Buffer.alloc(8 * 1024 * 1024));
  await assert.rejects(viaStream(bomb, new GunzipStream({ maxOutputBytes: 65536 })), { code: 'TOO_LARGE' });
  await assert.rejects(viaStream(z.subarray(0, z.length - 4), new GunzipStream()), { code: 'TRUNCATED' });
});

test('streams take the format positionally, as CompressionStream does; bad options throw', async () => {
  const src = corpus(30000, 4);
  const raw = await viaStream(src, new GzipStream('deflate-raw', { level: 1 }));
  assert.deepEqual(new Uint8Array(zlib.inflateRawSync(raw)), src);
  assert.deepEqual(await viaStream(raw, new GunzipStream('deflate-raw')), src);
  assert.deepEqual(await viaStream(zlib.deflateSync(src), new GunzipStream('deflate', { maxOutputBytes: 1 << 20 })), src);
  assert.throws(() => new GzipStream('brotli'), { code: 'INVALID' });
  assert.throws(() => gzip('x', 9), { code: 'INVALID' });
  assert.throws(() => gunzip(gzip('x'), null), { code: 'INVALID' });
});

test('a truncated per-message payload is TRUNCATED, and the context then refuses more', () => {
  const d = new DeflateContext();
  const i = new InflateContext();
  const c = d.compress('a message long enough to be cut in the middle of its deflate data');
  assert.throws(() => i.decompress(c.subarray(0, c.length - 2)), { code: 'TRUNCATED' });
  assert.throws(() => i.decompress(c), { code: 'BAD_STATE' });
  d.close();
  i.close();
});

test('DeflateContext shares one window across messages and interoperates with raw sync-flush inflate', () => {
  const d = new DeflateContext();
  const i = new InflateContext();
  const nodeInflate = zlib.createInflateRaw();
  let raw = 0;
  let packed = 0;
  let perMessageGzip = 0;
  for (let k = 0; k < 300; k++) {
    const msg = JSON.stringify({ type: 'chat', room: 'general', user: `user${k % 9}`, text: `message ${k} about the weather today`, ts: 1700000000000 + k * 137 });
    const c = d.compress(msg);
    assert.equal(i.decompressText(c), msg);
    raw += Buffer.byteLength(msg);
    packed += c.length;
    perMessageGzip += gzip(msg).length;
    // node's raw inflate, fed the stripped tail back, agrees
    const withTail = Buffer.concat([Buffer.from(c), Buffer.from([0, 0, 0xff, 0xff])]);
    nodeInflate.write(withTail);
  }
  assert.ok(raw / packed > 2.4, `shared-window ratio ${raw / packed}`);
  assert.ok(raw / perMessageGzip < raw / packed);
  assert.equal(d.stats().bytesIn, raw);
  // a message over the cap is an error, not a partial result
  const big = new InflateContext({ maxMessageBytes: 1000 });
  const d2 = new DeflateContext();
  assert.throws(() => big.decompress(d2.compress('a'.repeat(5000))), { code: 'TOO_LARGE' });
  d.close();
  i.close();
  d2.close();
  big.close();
  assert.throws(() => d.compress('x'), { code: 'CLOSED' });
});
