// The conversation list: what GET /api/conversations answers for the chosen filter, store and
// search, page after page, kept up to date by pushes. A push is applied at once (the badge, the
// preview, the holder) and the list is then re-read shortly after, so what the gateway counts
// (unread, owners, windows, display names) stays the truth.
import * as api from './api.js';

const PAGE = 30;
const state = {
  query: { filter: 'all', store: '', q: '' },
  items: [],          // conversations in the gateway's order (newest activity first)
  cursor: null,       // next page, null: no more
  error: '',
};
const listeners = new Set();
let refreshTimer = null;
let generation = 0;   // answers to an older query are dropped

export const keyOf = (accountId, openid) => `${accountId}/${openid}`;
const keyOfItem = (c) => keyOf(c.account_id, c.openid);

export function subscribe(fn) {
  listeners.add(fn);
}
function changed() {
  for (const fn of listeners) fn();
}

export const list = () => state.items;
export const get = (key) => state.items.find((c) => keyOfItem(c) === key);
export const hasMore = () => state.cursor !== null;
export const error = () => state.error;
export const query = () => ({ ...state.query });
export const totalUnread = () => state.items.reduce((n, c) => n + (c.unread || 0), 0);

function withKeys(items) {
  for (const c of items) c.key = keyOfItem(c);
  return items;
}

// Reads the first page again (as many entries as are shown, up to 100). Resolves to the answer.
export async function reload() {
  clearTimeout(refreshTimer);
  const mine = ++generation;
  const limit = Math.min(100, Math.max(PAGE, state.items.length));
  const r = await api.conversations({ ...state.query, limit });
  if (mine !== generation) return r;
  if (r.ok) {
    state.items = withKeys(r.body.conversations || []);
    state.cursor = r.body.next_cursor ?? null;
    state.error = '';
  } else if (r.status !== 401) {
    state.error = r.body.error || `会话列表加载失败（${r.status}）`;
  }
  changed();
  return r;
}

export async function loadMore() {
  if (state.cursor === null) return null;
  const mine = generation;
  const r = await api.conversations({ ...state.query, limit: PAGE, cursor: state.cursor });
  if (mine !== generation || !r.ok) return r;
  const known = new Set(state.items.map((c) => c.key));
  state.items.push(...withKeys(r.body.conversations || []).filter((c) => !known.has(c.key)));
  state.cursor = r.body.next_cursor ?? null;
  changed();
  return r;
}

export function setQuery(q) {
  Object.assign(state.query, q);
  state.items = [];
  return reload();
}

export function clear() {
  generation++;
  clearTimeout(refreshTimer);
  state.items = [];
  state.cursor = null;
  state.error = '';
  state.query = { filter: 'all', store: '', q: '' };
  changed();
}

// A re-read shortly after a burst of pushes.
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(reload, 400);
}

// Changes to one entry made by this page (after a reply, a panel edit…).
export function patch(key, fields) {
  const c = get(key);
  if (!c) return;
  Object.assign(c, fields);
  changed();
}

const typeNames = { image: '[图片]', voice: '[语音]', video: '[视频]', shortvideo: '[小视频]',
  location: '[位置]', link: '[链接]', file: '[文件]' };
export const previewOf = (msgType, text) =>
  (msgType === 'text' ? text ?? '' : typeNames[msgType] || `[${msgType}]`).slice(0, 40);

function touch(msg) {
  const key = keyOf(msg.account_id, msg.openid);
  let c = get(key);
  if (!c) {
    // Not shown yet (a new fan, another page): a placeholder until the re-read.
    c = { key, account_id: msg.account_id, openid: msg.openid,
      display_name: `顾客 ${String(msg.openid).slice(-6)}`, unread: 0, holder: null,
      consultant: null, exclusive: null, tags: [], last_message: null };
    state.items.unshift(c);
  } else {
    state.items.splice(state.items.indexOf(c), 1);
    state.items.unshift(c);
  }
  return c;
}

// Pushes from the WebSocket that concern the list.
export function onPush(msg, me) {
  switch (msg.type) {
    case 'message': {
      const c = touch(msg);
      c.unread = (c.unread || 0) + 1;
      c.last_message = { direction: 'in', type: msg.msg_type,
        preview: previewOf(msg.msg_type, msg.content), at: new Date().toISOString() };
      break;
    }
    case 'transfer':
      touch(msg).holder = { id: me.id, name: me.name };
      break;
    case 'lock': {
      const c = get(keyOf(msg.account_id, msg.openid));
      if (c) c.holder = msg.holder ?? null;
      changed();
      return;
    }
    case 'unread': {
      const c = get(keyOf(msg.account_id, msg.openid));
      if (c) c.unread = msg.unread ?? 0;
      changed();
      return;
    }
    case 'owner':
    case 'fan':
      break;
    default:
      return;
  }
  changed();
  refreshSoon();
}
