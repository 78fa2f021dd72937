import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { browser, server, useBrowserAndServer, watchErrors } from './harness.mjs';

useBrowserAndServer();

const TEXT = JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ id: i, user: `u${i % 13}`, text: 'héllo wörld 😀' })));

test('a plain page loads the IIFE with a <script> tag and gzips; Node gunzips the bytes', async () => {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await page.addScriptTag({ url: '/dist/switchboard.iife.js' });
  const bytes = await page.evaluate(async (text) => {
    await window.switchboard.init();
    return Array.from(window.switchboard.gzip(text, { level: 9 }));
  }, TEXT);
  assert.equal(zlib.gunzipSync(Buffer.from(bytes)).toString('utf8'), TEXT);
  assert.deepEqual(errors, []);
  await page.close();
});

test('CompressionStream output made in the page gunzips in switchboard, and the reverse', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  const result = await page.evaluate(async (text) => {
    const sb = await import('/dist/switchboard.mjs');
    await sb.init();
    const src = new TextEncoder().encode(text);
    const viaStream = async (bytes, ts) => new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(ts)).arrayBuffer());
    const dec = new TextDecoder();
    const out = {};
    for (const format of ['gzip', 'deflate', 'deflate-raw']) {
      const native = await viaStream(src, new CompressionStream(format));
      out[`${format}:native→sb`] = dec.decode(sb.gunzip(native, { format })) === text;
      const ours = sb.gzip(src, { format, level: 1 });
      out[`${format}:sb→native`] = dec.decode(await viaStream(ours, new DecompressionStream(format))) === text;
      const streamed = await viaStream(src, new sb.GzipStream({ format, level: 9 }));
      out[`${format}:GzipStream→native`] = dec.decode(await viaStream(streamed, new DecompressionStream(format))) === text;
      out[`${format}:native→GunzipStream`] = dec.decode(await viaStream(native, new sb.GunzipStream({ format }))) === text;
    }
    try {
      sb.gunzip(sb.gzip(new Uint8Array(4 << 20)), { maxOutputBytes: 1 << 20 });
      out.bomb = 'no error';
    } catch (e) {
      out.bomb = e.code;
    }
    return out;
  }, TEXT);
  for (const [k, v] of Object.entries(result)) {
    if (k !== 'bomb') assert.equal(v, true, k);
  }
  assert.equal(result.bomb, 'TOO_LARGE');
  await page.close();
});

test('strict CSP page loads the core from a separate .wasm URL', async () => {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}/tests/browser/fixtures/strict-csp.html`);
  await page.waitForFunction(() => document.getElementById('out').textContent !== 'pending');
  assert.equal(await page.textContent('#out'), 'ok');
  assert.deepEqual(errors, []);
  await page.close();
});
