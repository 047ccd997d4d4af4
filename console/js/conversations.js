// The conversations the console shows and their messages, kept in one place so the page can move to
// the conversation-list and history endpoints (issue 5's API, not on this gateway yet) by changing
// this module only. For now a conversation comes from the backlog (GET /api/agent/backlog: fans
// waiting for an answer) and from live pushes; its messages are those received live and sent from
// this page since it was opened (no history yet). Lock holders are known from the answers to
// accept/send/end/transfer (409 names the holder) and transfer pushes.
import * as api from './api.js';

const conversations = new Map();  // key "<account_id>/<openid>" → conversation
const listeners = new Set();

export const keyOf = (accountId, openid) => `${accountId}/${openid}`;

// A short tag for a fan: WeChat gives no nicknames, the remark and patient binding come later.
export const displayName = (c) => `顾客 ${c.openid.slice(-6)}`;

function changed(key) {
  for (const fn of listeners) fn(key);
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function ensure(accountId, openid) {
  const key = keyOf(accountId, openid);
  let c = conversations.get(key);
  if (!c) {
    c = {
      key, account_id: accountId, openid,
      unread: 0, owner: null, holder: null, waiting: false, reason: null,
      last_at: 0, messages: [],
    };
    conversations.set(key, c);
  }
  return c;
}

export const get = (key) => conversations.get(key);

// Newest activity first.
export function list() {
  return [...conversations.values()].sort((a, b) => b.last_at - a.last_at);
}

export function totalUnread() {
  let n = 0;
  for (const c of conversations.values()) n += c.unread;
  return n;
}

export function clear() {
  conversations.clear();
  changed(null);
}

// Reloads the fans waiting for an answer. Returns the API answer (401 means signed out).
export async function loadBacklog() {
  const r = await api.backlog();
  if (!r.ok) return r;
  for (const f of r.body.fans || []) {
    const c = ensure(f.account_id, f.openid);
    c.waiting = true;
    c.reason = f.reason;
    const at = Date.parse(f.last_message_at) || Date.now();
    c.last_at = Math.max(c.last_at, at);
    // Messages that arrived before this page: counted, their text not shown until history exists.
    const seen = c.messages.filter((m) => m.dir === 'in').length;
    if (f.messages > seen) {
      c.unread = Math.max(c.unread, f.messages - seen);
      if (!c.messages.some((m) => m.dir === 'note' && m.backlog)) {
        c.messages.unshift({ dir: 'note', backlog: true, at,
          text: `此前有 ${f.messages} 条未回复的消息（历史记录功能即将上线）` });
      }
    }
    changed(c.key);
  }
  return r;
}

const typeNames = { image: '[图片]', voice: '[语音]', video: '[视频]', shortvideo: '[小视频]',
  location: '[位置]', link: '[链接]', file: '[文件]' };

// A fan's message pushed to this agent. `seen`: the agent is looking at it right now.
export function addInbound(push, seen) {
  const c = ensure(push.account_id, push.openid);
  const text = push.msg_type === 'text' ? (push.content ?? '') :
    (typeNames[push.msg_type] || `[${push.msg_type}]`);
  if (c.messages.some((m) => m.dir === 'in' && m.id === push.message_id)) return c;
  c.messages.push({ dir: 'in', id: push.message_id, text, at: Date.now() });
  c.owner = push.owner ?? c.owner;
  c.waiting = true;
  c.last_at = Date.now();
  if (!seen) c.unread += 1;
  changed(c.key);
  return c;
}

export function addNote(key, text) {
  const c = conversations.get(key);
  if (!c) return;
  c.messages.push({ dir: 'note', text, at: Date.now() });
  changed(key);
}

export function markRead(key) {
  const c = conversations.get(key);
  if (!c || c.unread === 0) return;
  c.unread = 0;
  changed(key);
}

export function setHolder(key, holder) {
  const c = conversations.get(key);
  if (!c) return;
  c.holder = holder ?? null;
  changed(key);
}

// A conversation transferred to this agent (push): it holds the lock now.
export function transferredIn(push, me) {
  const c = ensure(push.account_id, push.openid);
  c.holder = { id: me.id, name: me.name };
  c.last_at = Date.now();
  c.messages.push({ dir: 'note', at: Date.now(),
    text: `「${push.from?.name ?? '其他客服'}」将此会话转接给了您` });
  c.unread += 1;
  changed(c.key);
  return c;
}

// Sends a reply. Resolves to the API answer; on success the message is shown as sent, the
// conversation is answered (unread cleared, out of the waiting list) and held by `me`.
export async function send(key, text, me) {
  const c = conversations.get(key);
  const r = await api.conversationAction(c.account_id, c.openid, 'send', { text });
  if (r.ok) {
    c.messages.push({ dir: 'out', text, at: Date.now(), outbox_id: r.body.outbox_id,
      state: '已提交发送' });
    c.holder = { id: me.id, name: me.name };
    c.unread = 0;
    c.waiting = false;
    c.last_at = Date.now();
  } else if (r.status === 409) {
    c.holder = r.body.holder ?? null;
  }
  changed(key);
  return r;
}

// accept / end / transfer: the answer, with the lock holder it tells recorded.
export async function act(key, action, body) {
  const c = conversations.get(key);
  const r = await api.conversationAction(c.account_id, c.openid, action, body);
  if (r.ok) {
    if (action === 'accept') c.holder = r.body.holder;
    if (action === 'end') c.holder = null;
    if (action === 'transfer') c.holder = r.body.transferred_to ?? null;
  } else if (r.status === 409) {
    c.holder = r.body.holder ?? null;
  }
  changed(key);
  return r;
}
