// Uses every public API of the package, so `tsc --strict` proves the shipped
// .d.ts files are complete and true. Type-checked only; never run.
import {
  init, SwitchboardError, type SwitchboardErrorCode,
  gzip, gunzip, deflate, inflate, GzipStream, GunzipStream, DeflateContext, InflateContext,
  type CompressionFormat,
} from 'switchboard';

export async function compression(file: Blob): Promise<number> {
  await init();
  await init({ wasmURL: new URL('/switchboard.wasm', location.href) });
  const format: CompressionFormat = 'deflate-raw';
  const a: Uint8Array = gzip('text', { level: 9, format });
  const b: Uint8Array = gunzip(a, { maxOutputBytes: 1 << 20, format });
  const c: Uint8Array = inflate(deflate(new Uint16Array([1, 2]), { level: 1 }), { maxOutputBytes: 100 });
  const streamed: ReadableStream<Uint8Array> = file.stream().pipeThrough(new GzipStream({ level: 6 })).pipeThrough(new GunzipStream({ maxOutputBytes: 1e6 }));
  const tx = new DeflateContext({ level: 6, windowBits: 15 });
  const rx = new InflateContext({ maxMessageBytes: 1 << 16 });
  const text: string = rx.decompressText(tx.compress('{"a":1}'));
  const bytes: Uint8Array = rx.decompress(tx.compress(new ArrayBuffer(8)));
  const { bytesIn, bytesOut } = tx.stats();
  tx.close();
  rx.close();
  try {
    gunzip(new Uint8Array(3));
  } catch (e) {
    if (e instanceof SwitchboardError) {
      const code: SwitchboardErrorCode = e.code;
      return code.length;
    }
  }
  void streamed;
  return a.length + b.length + c.length + text.length + bytes.length + bytesIn + bytesOut;
}
