// bench/relay: the relay (js/server/relay.mjs) against a socket.io 4.8
// server in one run, with Node clients: switchboard's client-role session
// (js/session.js, the Socket's defaults) over `ws`, and socket.io-client 4.8.
// Each server runs in a child process of its own (bench/lib/relay-server.mjs,
// so the two never share a heap), its clients in other child processes
// (bench/lib/relay-clients.mjs), all on 127.0.0.1. Printed as ratios.
//
//   node bench/relay.mjs [--idle 10000] [--subs 1000] [--pubs 4] [--rates R1,R2,... | --from 10 --max 2560]
//                        [--slo 1000] [--ms 3000] [--procs 2] [--kinds sb,sio,ws]
//   SWITCHBOARD_RELAY_WASM=FILE runs the relay on another core build (one
//   linked with --profiling-funcs, say); SB_BENCH_PROF=DIR writes a V8 CPU
//   profile of every child process into DIR.
//
// The machine is shared: wall-clock figures move with whatever else runs,
// so the fan-out rows also give the server process's CPU time per delivery
// (user + system over the phase and its drain, divided by the deliveries).
//
// 1. idle memory: the server's RSS and V8 heap (heapUsed + external, which
//    holds ArrayBuffers such as the relay core's linear memory) after two
//    forced GCs, with one client connected and gone (everything loaded and
//    warm), then with --idle clients connected (spread over --procs client
//    processes), each in a room of its own (socket.io puts every socket in a
//    room of its own too) and idle, measured again: the difference divided by
//    --idle. For the relay also the core's linear memory and the part of it
//    in use (its allocator's free bytes subtracted). The ws row is a bare
//    `ws` server holding the same sockets and doing nothing: the floor that
//    Node's sockets, the HTTP upgrade and ws cost either server.
// 2. fan-out: --subs subscribers in one room plus --pubs publishers in it,
//    the subscribers spread over --procs processes, the publishers in the
//    first. First a warm-up of 1 s at the first rate, not counted (what a
//    server makes on first use: zlib states, JIT, pools). Then for each rate
//    (messages a second, all publishers together) the publishers send for
//    --ms; each message (~230 B JSON) goes to every subscriber (and the
//    other publishers, not counted). The rates: --rates R1,R2,... as given,
//    or by default a ramp from --from (10) doubling while the server
//    sustains the rate, up to --max (2560): every server is driven to the
//    rate it no longer sustains, so the comparison is of what each sustains,
//    not of a rate both happen to meet.
//    deliveries/s: messages that reached a subscriber during the window /
//    the window. p99: of (wall clock at the subscriber's message event minus
//    wall clock at send) over every delivery of that phase's messages that
//    arrived within --ms after the phase ended; a delivery that did not
//    arrive by then counts as later than all (so p99 is reported as > that
//    when over 1% are missing). A rate is sustained when p99 is within --slo
//    ms (1000): 99% of what was offered arrived, that soon. The verdict:
//    the deliveries/s of the highest rate we sustain (of that phase's
//    messages, all of which arrived) >= 2x those of the highest rate
//    socket.io sustains, and at every rate both sustain our p99 no worse
//    than socket.io's. The subscribers join
//    before the clock starts ("joined in"); the relay's hello deadline is
//    raised to 120 s here, as every join sends the room's whole user list
//    to every member (presence), which keeps a relay busy for a while as a
//    room of 1,000 fills.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const IDLE = Number(arg('idle', 10000));
const SUBS = Number(arg('subs', 1000));
const PUBS = Number(arg('pubs', 4));
const RATES = arg('rates', null) && String(arg('rates')).split(',').map(Number); // null: the ramp
const FROM = Number(arg('from', 10));
const MAX = Number(arg('max', 2560));
const SLO = Number(arg('slo', 1000));
const MS = Number(arg('ms', 3000));
const PROCS = Number(arg('procs', 2));
const KINDS = String(arg('kinds', 'sb,sio,ws')).split(',');
const LABEL = { sb: 'switchboard relay', sio: 'socket.io 4.8', ws: 'bare ws (the floor)' };

const SERVER = fileURLToPath(new URL('./lib/relay-server.mjs', import.meta.url));
const CLIENTS = fileURLToPath(new URL('./lib/relay-clients.mjs', import.meta.url));

/** A child process that answers one message per request, in order. */
function child(path, args, execArgv = []) {
  // SB_BENCH_PROF=DIR: a V8 CPU profile of every child into DIR.
  const prof = process.env.SB_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SB_BENCH_PROF}`] : [];
  const proc = fork(path, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...execArgv, ...prof] });
  const waiting = [];
  let ready;
  const readyP = new Promise((r) => { ready = r; });
  proc.on('message', (m) => {
    if (m?.ready) ready(m);
    else waiting.shift()?.(m);
  });
  proc.on('exit', (code, sig) => {
    if (code && code !== 0) console.error(`${path} exited with ${code ?? sig}`);
    for (const w of waiting.splice(0)) w(null);
  });
  return {
    proc,
    ready: readyP,
    ask(msg) { return new Promise((r) => { waiting.push(r); proc.send(msg); }); },
    // Disconnecting lets it exit by itself (a --cpu-prof in NODE_OPTIONS is written); else SIGKILL.
    kill() {
      return new Promise((r) => {
        if (proc.exitCode !== null || proc.signalCode) return r();
        const t = setTimeout(() => proc.kill('SIGKILL'), process.env.SB_BENCH_PROF ? 60000 : 5000);
        proc.once('exit', () => { clearTimeout(t); r(); });
        proc.disconnect();
      });
    },
  };
}

async function server(kind) {
  const s = child(SERVER, ['--kind', kind], ['--expose-gc']);
  const { port } = await s.ready;
  return { ...s, url: kind === 'sio' ? `http://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/` };
}

async function clientProcs(kind, url, n) {
  const procs = Array.from({ length: n }, () => child(CLIENTS, ['--kind', kind, '--url', url], ['--max-old-space-size=4096']));
  await Promise.all(procs.map((p) => p.ready));
  return procs;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const wall = () => performance.timeOrigin + performance.now();
const KiB = (b) => `${(b / 1024).toFixed(1)} KiB`;

async function idle(kind) {
  const srv = await server(kind);
  const procs = await clientProcs(kind, srv.url, PROCS);
  try {
    // Warm: one client opened and closed (code loaded, pools made).
    const w = await procs[0].ask({ open: 1, prefix: 'warm-' });
    if (w.failed) throw new Error(`${kind}: the warm-up client did not open`);
    await procs[0].ask({ close: true });
    await sleep(500);
    const before = await srv.ask({ mem: true });
    const t0 = Date.now();
    const per = Math.ceil(IDLE / PROCS);
    const got = await Promise.all(procs.map((p, k) => p.ask({ open: Math.min(per, IDLE - k * per), prefix: `idle-${k}-` })));
    const failed = got.reduce((a, g) => a + g.failed, 0);
    const openMs = Date.now() - t0;
    await sleep(2000);
    const after = await srv.ask({ mem: true });
    // Per socket the server holds when measured (a client may have failed or been dropped).
    const n = Math.max(1, after.sockets - before.sockets);
    const d = (k) => (after[k] - before[k]) / n;
    return {
      n, failed, openMs, sockets: after.sockets,
      rss: d('rss'), heap: d('heapUsed') + d('external'), heapUsed: d('heapUsed'), external: d('external'),
      wasm: d('wasm'), wasmInUse: d('wasmInUse'),
    };
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    await srv.kill();
  }
}

function p99(lat, expected) {
  // Missing deliveries count as later than every one that arrived.
  const s = Float64Array.from(lat).sort();
  const k = Math.ceil(expected * 0.99) - 1;
  return k < s.length ? s[k] : Infinity;
}

/**
 * A phase's row meets the rate: p99 within the SLO, which also means that
 * 99% of the deliveries offered arrived (a missing one counts as later than all).
 */
const sustained = (r) => r.p99 <= SLO;

async function fanout(kind) {
  const srv = await server(kind);
  const procs = await clientProcs(kind, srv.url, PROCS);
  const rows = [];
  try {
    const t0 = Date.now();
    const per = Math.ceil(SUBS / PROCS);
    // Publishers first (they are in the room too), then the subscribers.
    const got = await Promise.all(procs.map((p, k) => p.ask({ open: Math.min(per, SUBS - k * per) + (k === 0 ? PUBS : 0), room: 'fan', publishers: k === 0 ? PUBS : 0 })));
    const failed = got.reduce((a, g) => a + g.failed, 0);
    const joinMs = Date.now() - t0;
    // Reported, not thrown: the other server's figures still print.
    if (failed) return { joinMs, failed, rows: [] };
    await sleep(2000); // whatever joining queued (presence) is through
    const first = RATES ? RATES[0] : FROM;
    await procs[0].ask({ pub: first, ms: 1000, phase: -1 }); // the warm-up, not counted
    await sleep(2000);
    for (let phase = 0, rate = first; RATES ? phase < RATES.length : rate <= MAX; phase++) {
      if (RATES) rate = RATES[phase];
      const cpu0 = (await srv.ask({ cpu: true })).us;
      const from = wall();
      const { sent } = await procs[0].ask({ pub: rate, ms: MS, phase });
      const to = wall();
      await sleep(MS);
      const cpu = (await srv.ask({ cpu: true })).us - cpu0;
      const res = await Promise.all(procs.map((p) => p.ask({ collect: phase, from, to })));
      const lat = res.flatMap((r) => r.lat);
      const expected = sent * SUBS;
      const inWindow = res.reduce((a, r) => a + r.inWindow, 0);
      const secs = (to - from) / 1000;
      // deliveries/s: of this phase's messages once sustained (all arrived, the
      // last ones after the window), else what arrived within the window.
      const row = { rate, sent, expected, got: lat.length, perSec: inWindow / secs, p99: p99(lat, expected), cpu: cpu / lat.length, p50: p99(lat, expected * 0.5 / 0.99) };
      if (sustained(row)) row.perSec = Math.max(row.perSec, lat.length / secs);
      rows.push(row);
      if (!RATES && !sustained(row)) break; // what it no longer sustains: the ramp ends
      rate *= 2;
      await sleep(1000);
    }
    return { joinMs, rows };
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    await srv.kill();
  }
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '∞');
const results = {};
for (const kind of KINDS) {
  results[kind] = { idle: IDLE ? await idle(kind) : null };
  await sleep(1000);
  results[kind].fan = SUBS && kind !== 'ws' ? await fanout(kind) : null;
  await sleep(1000);
}
const FAN = KINDS.filter((k) => results[k].fan);

console.log(`\nbench/relay: ${IDLE} idle connections; one room of ${SUBS} subscribers, ${PUBS} publishers; clients in ${PROCS} processes per server`);
if (IDLE) {
  console.log('\n1. memory per idle connection (server process)');
  console.log('| server | RSS | V8 heap + external | of which wasm in use (grown) | opened in | sockets held |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const k of KINDS) {
    const r = results[k].idle;
    console.log(`| ${LABEL[k]} | ${KiB(r.rss)} | ${KiB(r.heap)} (heap ${KiB(r.heapUsed)}) | ${k === 'sb' ? `${KiB(r.wasmInUse)} (${KiB(r.wasm)})` : '-'} | ${r.openMs} ms${r.failed ? `, ${r.failed} failed` : ''} | ${r.sockets} |`);
  }
  if (results.sb && results.sio) {
    const a = results.sb.idle, b = results.sio.idle;
    console.log(`ratio switchboard / socket.io: RSS ${(a.rss / b.rss).toFixed(2)}x, heap ${(a.heap / b.heap).toFixed(2)}x (target <= 0.5x: ${a.rss <= b.rss / 2 ? 'met' : 'MISSED'})`);
  }
}
if (SUBS) {
  const rates = [...new Set(FAN.flatMap((k) => results[k].fan.rows.map((r) => r.rate)))].sort((a, b) => a - b);
  console.log(`\n2. fan-out to ${SUBS} subscribers (publishes/s offered -> deliveries/s achieved, p50 / p99 latency, server CPU per delivery; * = sustained: p99 <= ${SLO} ms, so 99% delivered)`);
  console.log('| server | joined in | ' + rates.map((r) => `${r}/s (${r * SUBS}/s offered)`).join(' | ') + ' |');
  console.log('| --- | --- | ' + rates.map(() => '---').join(' | ') + ' |');
  for (const k of FAN) {
    const f = results[k].fan;
    const cell = (rate) => {
      const r = f.rows.find((x) => x.rate === rate);
      if (!r) return '-';
      return `${sustained(r) ? '*' : ''}${fmt(r.perSec)}/s, ${fmt(r.p50, 1)} / ${fmt(r.p99, 1)} ms, ${r.cpu.toFixed(1)} µs${r.got < r.expected ? ` (${r.expected - r.got} late)` : ''}`;
    };
    console.log(`| ${LABEL[k]} | ${f.joinMs} ms${f.failed ? ` (${f.failed} did not join)` : ''} | ` + rates.map(cell).join(' | ') + ' |');
  }
  if (results.sb?.fan && results.sio?.fan) {
    const best = (k) => results[k].fan.rows.filter(sustained).sort((a, b) => b.perSec - a.perSec)[0];
    const a = best('sb'), b = best('sio');
    const both = results.sb.fan.rows.filter((r) => sustained(r) && results.sio.fan.rows.some((x) => x.rate === r.rate && sustained(x)));
    const p99s = both.map((r) => [r, results.sio.fan.rows.find((x) => x.rate === r.rate)]);
    const ratio = a && b ? a.perSec / b.perSec : NaN;
    const p99ok = p99s.length > 0 && p99s.every(([x, y]) => x.p99 <= y.p99);
    console.log(`sustained: switchboard ${a ? `${fmt(a.perSec)}/s at ${a.rate}/s, p99 ${fmt(a.p99, 1)} ms` : 'none'}; socket.io ${b ? `${fmt(b.perSec)}/s at ${b.rate}/s, p99 ${fmt(b.p99, 1)} ms` : 'none'}: ${ratio.toFixed(2)}x`);
    console.log(`p99 at the rates both sustain: ${p99s.map(([x, y]) => `${x.rate}/s ${fmt(x.p99, 1)} vs ${fmt(y.p99, 1)} ms`).join('; ') || 'none'}`);
    console.log(`target (>= 2x the deliveries/s socket.io sustains, p99 no worse at equal rates): ${ratio >= 2 && p99ok ? 'met' : 'MISSED'}`);
  }
}
