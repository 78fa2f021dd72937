import { init, gzip, gunzip, DeflateContext, InflateContext } from '/js/index.js';
import { el, fmtBytes, Sparkline } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const levelSel = $('level');
for (let l = 0; l <= 9; l++) levelSel.append(el('option', { value: l, selected: l === 6 }, String(l)));

function sampleJSON(n = 300) {
  const users = ['alice', 'bob', 'carol', 'dave'];
  return JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: i, user: users[i % 4], text: `message ${i} in the general room`, ts: 1700000000000 + i * 1000 })), null, 1);
}

async function viaStream(bytes, ts) {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(ts)).arrayBuffer());
}

// Median of a few runs, so one slow frame does not decide the figure.
async function timed(fn, reps = 7) {
  const ts = [];
  let out;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    out = await fn();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return [out, ts[reps >> 1]];
}

function row(name, inLen, outLen, ct, dt, ok) {
  return el('tr', {},
    el('td', {}, name), el('td', {}, fmtBytes(inLen)), el('td', {}, fmtBytes(outLen)),
    el('td', {}, (inLen / Math.max(1, outLen)).toFixed(2)),
    el('td', {}, `${ct.toFixed(3)} ms`), el('td', {}, `${dt.toFixed(3)} ms`),
    el('td', { class: ok ? 'ok' : 'bad' }, ok ? 'exact' : 'MISMATCH'));
}

async function run() {
  const text = $('input').value;
  const bytes = new TextEncoder().encode(text);
  const level = Number(levelSel.value);
  const format = $('format').value;
  const same = (a) => a.length === bytes.length && a.every((b, i) => b === bytes[i]);
  const [ours, ct] = await timed(() => gzip(bytes, { level, format }));
  const [back, dt] = await timed(() => gunzip(ours, { format }));
  const [native, nct] = await timed(() => viaStream(bytes, new CompressionStream(format)));
  const [nback, ndt] = await timed(() => viaStream(native, new DecompressionStream(format)));
  // cross-check: each side reads the other's output
  const cross = same(gunzip(native, { format })) && same(await viaStream(ours, new DecompressionStream(format)));
  $('results').replaceChildren(
    row(`switchboard (level ${level})`, bytes.length, ours.length, ct, dt, same(back)),
    row('CompressionStream (level fixed)', bytes.length, native.length, nct, ndt, same(nback)),
    el('tr', {}, el('td', { colspan: 7, class: cross ? 'ok' : 'bad' }, cross ? 'each decompresses the other’s output byte for byte' : 'cross-check failed')),
  );
  $('status').textContent = 'done';
}

function messages() {
  const users = ['alice', 'bob', 'carol', 'dave', 'erin'];
  const words = 'hello world status update ok the meeting is at noon see you soon'.split(' ');
  const msgs = Array.from({ length: 200 }, (_, i) => JSON.stringify({
    type: 'chat', id: 5000 + i, room: 'general', user: users[i % 5],
    text: Array.from({ length: 8 }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' '),
    ts: 1700000000000 + i * 1234,
  }));
  const d = new DeflateContext();
  const inf = new InflateContext();
  const chart = new Sparkline($('chart'), { points: 200, label: 'bytes/message (shared window)' });
  let raw = 0, single = 0, shared = 0, ok = true;
  for (const m of msgs) {
    const c = d.compress(m);
    ok &&= inf.decompressText(c) === m;
    raw += new TextEncoder().encode(m).length;
    single += gzip(m).length;
    shared += c.length;
    chart.push(c.length);
  }
  d.close();
  inf.close();
  const stat = (label, value) => el('span', { class: 'stat' }, el('b', {}, value), label);
  $('msgstats').replaceChildren(
    stat(`raw JSON (${Math.round(raw / msgs.length)} B avg)`, fmtBytes(raw)),
    stat(`gzip per message (×${(raw / single).toFixed(2)})`, fmtBytes(single)),
    stat(`shared window (×${(raw / shared).toFixed(2)})`, fmtBytes(shared)),
    stat('round trip', ok ? 'exact' : 'MISMATCH'),
  );
}

$('sample').addEventListener('click', () => { $('input').value = sampleJSON(); });
$('run').addEventListener('click', () => run().catch((e) => { $('status').textContent = `${e.code || 'error'}: ${e.message}`; }));
$('messages').addEventListener('click', messages);
$('input').value = sampleJSON();
await init();
$('status').textContent = 'core loaded';
$('run').disabled = false;
