// Shared set-up for browser tests: Debian's Chromium driven by playwright-core
// (no browser download), and the dev server on two loopback ports.
import { mkdtemp, rm } from 'node:fs/promises';
import { before, after } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../../web/server.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Launch headless Chromium. Close it with `await browser.close()`. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], headless: true });
}

/**
 * A persistent context (own profile dir, e.g. for IndexedDB across reloads or
 * Web Locks across pages). Returns { context, close() }.
 */
export async function launchPersistent(extraArgs = []) {
  const dir = await mkdtemp(join(tmpdir(), 'sb-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], headless: true,
  });
  return { context, async close() { await context.close(); await rm(dir, { recursive: true, force: true }); } };
}

/** Start the dev server on free ports: { url, url2, crossSiteUrl, close() }. */
export function startDevServer(opts = {}) {
  return startServer({ quiet: true, ...opts });
}

/** The dev server and Chromium of a test file, set by useBrowserAndServer(). */
export let server;
export let browser;

/**
 * One dev server and one browser for the whole file: started before its first
 * test, closed after its last. `server` and `browser` above are live bindings.
 * `setup` runs once both are up (a file's own before() hooks may run first).
 */
export function useBrowserAndServer(extraArgs = [], setup = null) {
  before(async () => {
    server = await startDevServer();
    browser = await launchBrowser(extraArgs);
    await setup?.();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });
}

/**
 * Serve a freshly built core instead of dist/switchboard.wasm when
 * SWITCHBOARD_WASM names one (as the Node tests do). target: page or context.
 */
export async function routeWasm(target) {
  const path = process.env.SWITCHBOARD_WASM;
  if (path) await target.route('**/dist/switchboard.wasm', (r) => r.fulfill({ path, contentType: 'application/wasm' }));
}

/** Collect page errors and console errors so tests can assert none happened. */
/**
 * The console errors an outage does not explain: Chromium logs every failed
 * WebSocket handshake, and every failed or refused fetch of the Socket's HTTP
 * attempts (a relay that is down, a proxy's 502 page without CORS headers).
 */
export const unexpected = (errors) => errors.filter((e) => !/^WebSocket connection to .* failed|^Failed to load resource|net::ERR_|has been blocked by CORS policy/.test(e));

export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return errors;
}
