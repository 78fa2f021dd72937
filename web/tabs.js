// The seeds' page1/page2 chat over BroadcastChannel, rebuilt: messages live
// in a SharedState (ordered, caught up when a tab opens late, restored from
// storage after every tab closed), the TabGroup shows who leads, and every
// string from another tab is rendered with textContent.
import { init, SharedState } from '/js/index.js';
import { el, Sparkline, median } from '/web/ui.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'demo';
const mode = params.get('mode') === 'lease' ? 'lease' : 'auto';
const MAX_LINES = 100;

const $ = (id) => document.getElementById(id);

await init();
const state = await SharedState.open(`tabs-demo:${room}`, {
  persist: true,
  initial: { title: 'Chat room' },
  // ?heartbeatTimeout= lets a test on a loaded machine use a longer lease.
  group: { mode, preferVisible: params.has('preferVisible'), heartbeatInterval: 250, heartbeatTimeout: Number(params.get('heartbeatTimeout')) || 1500 },
});
const group = state.group;
window.tabsDemo = { state, group }; // for the browser tests

// Message keys sort in send order: wall time, then tab id, then a counter.
let counter = 0;
function messageKey() {
  const t = String(Date.now()).padStart(15, '0');
  const id = String(state.id).padStart(10, '0');
  return `msg:${t}:${id}:${String(++counter).padStart(6, '0')}`;
}

$('user').value = sessionStorage.getItem('tabs-demo:user') || `tab ${String(state.id).slice(-4)}`;
$('user').addEventListener('change', () => sessionStorage.setItem('tabs-demo:user', $('user').value));

function say(text) {
  state.set(messageKey(), { user: $('user').value.slice(0, 40), text: text.slice(0, 2000), at: Date.now(), from: state.id });
}
function send() {
  const text = $('text').value.trim();
  if (!text) return;
  say(text);
  $('text').value = '';
}
$('burst').addEventListener('click', () => { for (let i = 1; i <= 100; i++) say(`burst line ${i} of 100`); });
$('send').addEventListener('click', send);
$('text').addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });

function addTodo() {
  const text = $('todotext').value.trim();
  if (!text) return;
  const id = `todo:${Date.now().toString(36)}-${state.id.toString(36)}-${++counter}`;
  state.set(id, { text: text.slice(0, 200), done: false, at: Date.now() });
  $('todotext').value = '';
}
$('add').addEventListener('click', addTodo);
$('todotext').addEventListener('keydown', (e) => { if (e.key === 'Enter') addTodo(); });
$('clear').addEventListener('click', () => {
  for (const [k, v] of [...state.entries()]) if (k.startsWith('todo:') && v && v.done) state.delete(k);
});

function renderChat() {
  const box = $('messages');
  const keys = [...state.keys()].filter((k) => k.startsWith('msg:')).sort();
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.replaceChildren(...keys.map((k) => {
    const m = state.get(k) || {};
    return el('div', { class: `msg${m.from === state.id ? ' self' : ''}`, 'data-key': k },
      el('strong', {}, `${String(m.user ?? '?')}: `), String(m.text ?? ''),
      el('small', {}, new Date(Number(m.at) || 0).toLocaleTimeString()));
  }));
  if (atBottom) box.scrollTop = box.scrollHeight;
  $('chatstatus').textContent = `${keys.length} message${keys.length === 1 ? '' : 's'}`;
}

function renderTodos() {
  const items = [...state.entries()].filter(([k]) => k.startsWith('todo:'))
    .sort((a, b) => (a[1]?.at ?? 0) - (b[1]?.at ?? 0) || (a[0] < b[0] ? -1 : 1));
  $('todos').replaceChildren(...items.map(([k, v]) => {
    const box = el('input', { type: 'checkbox', 'aria-label': 'done' });
    box.checked = !!v.done;
    box.addEventListener('change', () => state.update(k, (cur) => ({ ...cur, done: box.checked })));
    const del = el('button', { class: 'secondary', 'aria-label': 'remove', onclick: () => state.delete(k) }, '×');
    return el('div', { class: `todo${v.done ? ' done' : ''}`, 'data-key': k }, box, el('span', {}, String(v.text ?? '')), del);
  }));
}

function renderGroup() {
  $('me').textContent = `#${group.id}`;
  $('role').textContent = group.isLeader ? 'leader' : 'follower';
  $('leader').textContent = group.leader ? `#${group.leader}` : 'electing…';
  $('mode').textContent = group.mode;
  $('tabs').replaceChildren(...group.tabs.map((t) => el('span', {
    class: `badge${t.id === group.leader ? ' ok' : ''}`,
  }, `#${t.id}${t.self ? ' (this tab)' : ''}${t.visible ? '' : ' · hidden'}`)));
  document.title = `${group.isLeader ? '★ ' : ''}switchboard · tabs`;
}

// The leader keeps the chat bounded: only one tab prunes, so no tab
// deletes a line another tab is still adding back.
function prune() {
  if (!group.isLeader) return;
  const keys = [...state.keys()].filter((k) => k.startsWith('msg:')).sort();
  for (let i = 0; i < keys.length - MAX_LINES; i++) state.delete(keys[i]);
}

// Live stats, pushed once a second. Tabs of one browser share a clock, so
// now - at is the time a line took from the writer's set() to this tab.
const tick = { changes: 0, delays: [] };
const charts = {
  rate: new Sparkline($('chartRate'), { label: 'changes/s from other tabs' }),
  latency: new Sparkline($('chartLatency'), { label: 'delivery p50, ms', color: '#15803d' }),
  tabs: new Sparkline($('chartTabs'), { label: 'tabs open', color: '#b45309' }),
};
setInterval(() => {
  charts.rate.push(tick.changes);
  charts.latency.push(median(tick.delays));
  charts.tabs.push(group.tabs.length);
  Object.assign(tick, { changes: 0, delays: [] });
}, 1000);

state.subscribe((d) => {
  if (!d.local && d.remote !== false) {
    tick.changes += d.keys.length;
    for (const k of d.keys) {
      const m = k.startsWith('msg:') ? state.get(k) : undefined;
      if (m && Number.isFinite(m.at)) tick.delays.push(Math.max(0, Date.now() - m.at));
    }
  }
  if (d.keys.some((k) => k.startsWith('msg:'))) { renderChat(); prune(); }
  if (d.keys.some((k) => k.startsWith('todo:'))) renderTodos();
});
group.addEventListener('leaderchange', () => { renderGroup(); prune(); });
group.addEventListener('presence', renderGroup);
renderChat();
renderTodos();
renderGroup();
window.tabsDemo.ready = true;
