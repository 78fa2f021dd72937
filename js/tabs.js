// The tabs job (switchboard/tabs, docs/tabs.md): TabGroup (js/tab-group.js),
// presence and a leader; SharedState (js/shared-state.js), a replicated
// key/value map on top of it.
export { TabGroup } from './tab-group.js';
export { SharedState } from './shared-state.js';
