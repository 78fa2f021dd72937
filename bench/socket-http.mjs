// bench/socket-http: the Socket over HTTP beside the Socket over WebSocket,
// and beside socket.io 4 on its long-polling transport and on WebSocket, in
// one Chromium run, interleaved rounds, medians (docs/socket.md, "When
// WebSocket is blocked"):
//
//   sb-ws     Socket                          -> the relay (/relay, hello.echo)
//   sb-http   Socket, transports ['http']     -> the same relay, same port and path
//   sio-poll  socket.io-client, ['polling']   -> socket.io 4 ('msg' echoed)
//   sio-ws    socket.io-client, ['websocket'] -> the same socket.io server
//
//   node bench/socket-http.mjs [--rounds 5] [--n 5000] [--rtt 200] [--fallbacks 5]
//
// The servers are bench/lib/socket-server.mjs in a child process on loopback.
// 1. throughput: N chat messages (~230 B JSON) sent as fast as the API
//    allows, until all N are back. Delivered msgs/s.
// 2. round trip: sequential request/answer (Socket: request(); socket.io:
//    emit with an ack), blocks of --rtt, mean per block, median over rounds.
// 3. fallback: Debian's nginx with its defaults (no upgrade) in front of the
//    same server; a new Socket with default options sends one message at
//    once; the time from its first failed upgrade (the first 'reconnecting')
//    to that message's echo over HTTP. Median of --fallbacks fresh pages.
import { fork } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';
import { routePeers, peerVersion } from './lib/peers.mjs';
import { NGINX, freePort, startNginx, stop } from '../tests/node/redis-procs.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 5), N = arg('n', 5000), RTT_N = arg('rtt', 200), FALLBACKS = arg('fallbacks', 5);
const KINDS = ['sb-ws', 'sb-http', 'sio-poll', 'sio-ws'];
const LABEL = {
  'sb-ws': 'Socket over WebSocket -> relay', 'sb-http': 'Socket over HTTP -> relay',
  'sio-poll': 'socket.io-client, polling -> socket.io', 'sio-ws': 'socket.io-client, websocket -> socket.io',
};

const server = await startDevServer();
const SERVER = fileURLToPath(new URL('./lib/socket-server.mjs', import.meta.url));
const child = fork(SERVER, ['--port', '0', '--allowed-origin', new URL(server.url).origin], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const port = await new Promise((ok) => child.on('message', (m) => { if (m?.ready) ok(m.port); }));
const dir = await mkdtemp(join(tmpdir(), 'sb-bench-http-'));
await chmod(dir, 0o755); // nginx's worker (nobody, under root) buffers POST bodies here
let nginx = null, lb = 0;
if (NGINX) {
  lb = await freePort();
  for (const d of ['body', 'proxy']) await mkdir(join(dir, d));
  const t = (x) => join(dir, x);
  await writeFile(t('nginx.conf'), `daemon off;\nworker_processes 1;\npid ${t('nginx.pid')};\nerror_log ${t('error.log')} warn;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  client_body_temp_path ${t('body')};\n  proxy_temp_path ${t('proxy')};\n  fastcgi_temp_path ${t('f')};\n  uwsgi_temp_path ${t('u')};\n  scgi_temp_path ${t('s')};\n  server {\n    listen 127.0.0.1:${lb};\n    location / { proxy_pass http://127.0.0.1:${port}; }\n  }\n}\n`);
  nginx = await startNginx(dir, lb);
}
const browser = await launchBrowser();
const context = await browser.newContext();
await routePeers(context, ['socket.io-client']);
const page = await context.newPage();
page.on('pageerror', (e) => console.error('page error:', e));
await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
await page.evaluate(async ({ N }) => {
  const sb = await import('/js/index.js');
  await sb.init();
  const { io } = await import('/__peer/socket.io-client.js');
  let seed = 7;
  const rnd = (n) => { seed = (seed + 0x6d2b79f5) >>> 0; let t = seed; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) % n); };
  const words = 'the a we you they it is was be have do say get make go know take see come think look want give use find tell ask work meeting lunch deploy build release review merge branch test fix bug ticket today tomorrow later soon maybe yes no thanks'.split(' ');
  const msgs = [];
  for (let i = 0; i < N; i++) {
    let text = '';
    while (text.length < 110) text += (text ? ' ' : '') + (rnd(12) ? words[rnd(words.length)] : String(rnd(10000)));
    msgs.push(JSON.stringify({ type: 'message', room: 'general', user: `user${rnd(50)}`, id: rnd(1e9).toString(16), ts: 1767225600000 + i * 997, text, reply: null }));
  }
  const objs = msgs.map((m) => JSON.parse(m));
  let rooms = 0;
  const open = (kind, base) => {
    const c = {};
    let fn = () => {};
    if (kind.startsWith('sio')) {
      const s = io(base, { transports: [kind === 'sio-poll' ? 'polling' : 'websocket'], forceNew: true });
      s.on('msg', (m) => fn(m));
      c.ready = new Promise((r) => s.once('connect', r));
      c.send = (i) => s.emit('msg', objs[i]);
      c.request = (i) => new Promise((r) => s.emit('req', objs[i], r));
      c.close = () => s.close();
    } else {
      const s = new sb.Socket(`${base}/relay`, {
        transports: kind === 'sb-http' ? ['http'] : ['websocket'],
        hello: { room: `bench-${++rooms}-${Math.random()}`, user: 'bench', echo: true }, heartbeat: false,
      });
      s.onmessage = (e) => { if (e.channel === 0) fn(e.data); };
      c.ready = new Promise((r) => s.addEventListener('open', r, { once: true }));
      c.send = (i) => s.send(msgs[i]);
      c.request = (i) => s.request(msgs[i]);
      c.close = () => s.close();
    }
    c.onmsg = (f) => { fn = f; };
    return c;
  };
  window.B = {
    async rate(kind, base) {
      const c = open(kind, base);
      await c.ready;
      let got = 0;
      const done = new Promise((r) => c.onmsg(() => { if (++got === N) r(); }));
      const t0 = performance.now();
      for (let i = 0; i < N; i++) c.send(i);
      await done;
      const ms = performance.now() - t0;
      c.close();
      return N / (ms / 1000);
    },
    async rtt(kind, base, n) {
      const c = open(kind, base);
      await c.ready;
      for (let i = 0; i < 20; i++) await c.request(i); // warm
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await c.request(i);
      const ms = (performance.now() - t0) / n;
      c.close();
      return ms;
    },
  };
}, { N });

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const base = `ws://127.0.0.1:${port}`, httpBase = `http://127.0.0.1:${port}`;
const urlOf = (k) => (k.startsWith('sio') ? httpBase : base);
const rate = Object.fromEntries(KINDS.map((k) => [k, []])), rtt = Object.fromEntries(KINDS.map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const k of r % 2 ? [...KINDS].reverse() : KINDS) {
    rate[k].push(await page.evaluate(([k, u]) => window.B.rate(k, u), [k, urlOf(k)]));
    rtt[k].push(await page.evaluate(([k, u, n]) => window.B.rtt(k, u, n), [k, urlOf(k), RTT_N]));
  }
}
const falls = [];
if (nginx) {
  for (let i = 0; i < FALLBACKS; i++) {
    const p = await context.newPage();
    await p.goto(`${server.url}/tests/browser/fixtures/blank.html`);
    await p.evaluate(async () => { const sb = await import('/js/index.js'); await sb.init(); });
    falls.push(await p.evaluate(async (u) => {
      const sb = await import('/js/index.js');
      let t0 = 0;
      const s = new sb.Socket(`${u}/relay`, { hello: { room: `fb-${Math.random()}`, user: 'fb', echo: true } });
      s.addEventListener('reconnecting', () => { if (!t0) t0 = performance.now(); });
      s.onerror = () => {};
      const back = new Promise((r) => { s.onmessage = (e) => { if (e.channel === 0) r(performance.now()); }; });
      s.send('{"hello":"over whatever works"}');
      const t1 = await back;
      const st = s.stats();
      s.close();
      return { ms: t1 - t0, transport: st.transport };
    }, `ws://127.0.0.1:${lb}`));
    await p.close();
  }
}

const f = (v, d = 0) => v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`command: node bench/socket-http.mjs ${process.argv.slice(2).join(' ')}`.trimEnd());
console.log(`socket-http bench: Chromium ${browser.version()}, ${N} chat messages of ~230 B, ${ROUNDS} interleaved rounds, medians; socket.io-client ${await peerVersion('socket.io-client')}`);
console.log('');
console.log('| client -> server | throughput, msgs/s | request round trip |');
console.log('| --- | ---: | ---: |');
for (const k of KINDS) {
  const x = median(rate[k]), t = median(rtt[k]);
  console.log(`| ${LABEL[k]} | ${f(x)} (${f(x / median(rate['sb-ws']), 2)}×) | ${f(t * 1000)} µs (${f(t / median(rtt['sb-ws']), 2)}×) |`);
}
console.log('');
console.log('ratios to the Socket over WebSocket.');
if (falls.length) {
  console.log(`fallback behind nginx without upgrades (default options): first failed upgrade -> first message back over HTTP: median ${f(median(falls.map((x) => x.ms)))} ms (${falls.map((x) => f(x.ms)).join(', ')}; transport ${[...new Set(falls.map((x) => x.transport))].join('/')})`);
} else {
  console.log('fallback: not measured (no nginx here)');
}
await browser.close();
await stop(nginx, 'SIGTERM');
child.kill('SIGKILL');
await server.close();
await rm(dir, { recursive: true, force: true });
