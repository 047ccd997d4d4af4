// The console page: sign-in, the conversation list, the chat pane and its actions, the accepting
// switch, and live pushes. State about conversations lives in conversations.js.
import * as api from './api.js';
import * as alerts from './alerts.js';
import * as convs from './conversations.js';
import { connectLive } from './live.js';

const $ = (id) => document.getElementById(id);
let me = null;        // the signed-in agent
let live = null;      // the WebSocket
let selected = null;  // key of the open conversation

// ---- views ----------------------------------------------------------------------------------

function showSignIn(message = '') {
  if (live) live.stop();
  live = null;
  me = null;
  selected = null;
  convs.clear();
  $('app-view').hidden = true;
  $('signin-view').hidden = false;
  $('signin-error').textContent = message;
  alerts.setTitleBadge(0);
}

async function showApp(agent) {
  me = agent;
  $('signin-view').hidden = true;
  $('app-view').hidden = false;
  $('me').textContent = `${agent.name}（编号 ${agent.id}）`;
  $('me').dataset.agentId = String(agent.id);
  render();
  live = connectLive({ onMessage: onPush, onState: onLiveState, onSignedOut: () =>
    showSignIn('登录已过期，请重新登录') });
  const r = await convs.loadBacklog();
  if (r.status === 401) showSignIn(r.body.error);
}

// 401 anywhere: back to sign-in with the gateway's reason.
function handleAuth(r) {
  if (r.status === 401) {
    showSignIn(r.body.error);
    return true;
  }
  return false;
}

// ---- rendering -------------------------------------------------------------------------------

function holderText(c) {
  if (!c.holder) return null;
  return c.holder.id === me.id ? '由我接待' : `「${c.holder.name}」接待中`;
}

function markerSpans(c) {
  const spans = [];
  const holder = holderText(c);
  if (holder) {
    const s = document.createElement('span');
    s.className = `marker ${c.holder.id === me.id ? 'mine' : 'other'}`;
    s.textContent = holder;
    s.dataset.testid = 'holder-marker';
    spans.push(s);
  }
  if (c.owner != null) {
    const s = document.createElement('span');
    s.className = 'marker owner';
    s.textContent = String(c.owner) === String(me.id) ? '归属：我' : `归属：客服 ${c.owner}`;
    spans.push(s);
  }
  return spans;
}

function renderList() {
  const ul = $('conversations');
  ul.replaceChildren();
  const all = convs.list();
  $('list-empty').hidden = all.length > 0;
  for (const c of all) {
    const li = document.createElement('li');
    li.dataset.key = c.key;
    li.dataset.testid = 'conversation';
    if (c.key === selected) li.classList.add('selected');
    const row = document.createElement('div');
    row.className = 'row';
    const name = document.createElement('strong');
    name.textContent = convs.displayName(c);
    const right = document.createElement('span');
    right.append(...markerSpans(c));
    if (c.unread > 0) {
      const b = document.createElement('span');
      b.className = 'badge';
      b.dataset.testid = 'unread';
      b.textContent = String(c.unread);
      right.append(b);
    }
    row.append(name, right);
    const last = document.createElement('div');
    last.className = 'last';
    const lastMsg = [...c.messages].reverse().find((m) => m.dir !== 'note');
    last.textContent = lastMsg ? lastMsg.text : (c.waiting ? '等待回复' : '');
    li.append(row, last);
    li.addEventListener('click', () => select(c.key));
    ul.append(li);
  }
}

function renderChat() {
  const c = selected && convs.get(selected);
  $('chat-empty').hidden = Boolean(c);
  $('chat').hidden = !c;
  if (!c) return;
  $('chat-title').textContent = convs.displayName(c);
  $('chat-title').title = c.openid;
  $('chat-markers').replaceChildren(...markerSpans(c));
  const banner = $('holder-banner');
  if (c.holder && c.holder.id !== me.id) {
    banner.textContent = `该顾客正在由「${c.holder.name}」接待，您暂时无法回复`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  const ol = $('messages');
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  ol.replaceChildren();
  for (const m of c.messages) {
    const li = document.createElement('li');
    li.className = m.dir;
    li.dataset.testid = `message-${m.dir}`;
    li.textContent = m.text;
    if (m.dir !== 'note') {
      const meta = document.createElement('span');
      meta.className = 'meta';
      meta.textContent = new Date(m.at).toLocaleTimeString('zh-CN') + (m.state ? ` · ${m.state}` : '');
      li.append(meta);
    }
    ol.append(li);
  }
  if (atBottom) ol.scrollTop = ol.scrollHeight;
}

function render() {
  renderList();
  renderChat();
  alerts.setTitleBadge(convs.totalUnread());
}

function select(key) {
  selected = key;
  $('chat-error').textContent = '';
  convs.markRead(key);  // only this page's badge: the gateway clears unread on a reply
  render();
  $('messages').scrollTop = $('messages').scrollHeight;
}

convs.subscribe(() => render());

// ---- pushes ----------------------------------------------------------------------------------

function onLiveState(state) {
  const el = $('connection');
  el.classList.toggle('online', state === 'open');
  el.textContent = state === 'open' ? '已连接' : state === 'connecting' ? '连接中…' : '连接已断开，正在重连…';
  if (state === 'closed') {
    // A refused upgrade looks like any drop: ask whether the session is still valid.
    api.me().then(handleAuth);
  }
}

async function refreshAccepting() {
  const r = await api.me();
  if (handleAuth(r)) return;
  if (r.ok) $('accepting').checked = Boolean(r.body.online);
}

function onPush(msg) {
  switch (msg.type) {
    case 'hello':
      refreshAccepting();
      if (msg.came_online) convs.loadBacklog();
      break;
    case 'message': {
      const seen = selected === convs.keyOf(msg.account_id, msg.openid) && !document.hidden;
      convs.addInbound(msg, seen);
      alerts.chime();
      break;
    }
    case 'transfer':
      convs.transferredIn(msg, me);
      alerts.chime();
      break;
    case 'resync':
      convs.loadBacklog();
      break;
    default:
      break;  // unknown types are ignored (docs/api.md)
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && selected) convs.markRead(selected);
});

// ---- actions ---------------------------------------------------------------------------------

function showResult(r) {
  if (r.ok) {
    $('chat-error').textContent = '';
    return true;
  }
  if (handleAuth(r)) return false;
  $('chat-error').textContent = r.body.error || `操作失败（${r.status}）`;
  return false;
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  alerts.unlock();
  const f = ev.target;
  const button = f.querySelector('button');
  button.disabled = true;
  $('signin-error').textContent = '';
  const r = await api.signIn(f.clinic.value.trim(), f.name.value.trim(), f.password.value);
  button.disabled = false;
  f.password.value = '';
  if (!r.ok) {
    $('signin-error').textContent = r.body.error || `登录失败（${r.status}）`;
    return;
  }
  showApp(r.body.agent);
});

$('sign-out').addEventListener('click', async () => {
  await api.signOut();
  showSignIn();
});

$('accepting').addEventListener('change', async (ev) => {
  const want = ev.target.checked;
  const r = await api.setAccepting(want);
  if (handleAuth(r)) return;
  if (!r.ok) {
    ev.target.checked = !want;
    alert(r.body.error || '操作失败');
  }
});

$('reply-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const box = ev.target.text;
  const text = box.value;
  if (!text.trim()) {
    $('chat-error').textContent = '请输入回复内容';
    return;
  }
  const button = ev.target.querySelector('button');
  button.disabled = true;
  const r = await convs.send(selected, text, me);
  button.disabled = false;
  if (showResult(r)) box.value = '';
});

$('reply-form').text.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('reply-form').requestSubmit();
});

$('accept').addEventListener('click', async () => {
  showResult(await convs.act(selected, 'accept', {}));
});

$('end').addEventListener('click', async () => {
  const r = await convs.act(selected, 'end', {});
  if (showResult(r)) convs.addNote(selected, '您结束了此会话');
});

$('transfer-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const to = Number(ev.target.to_agent.value);
  const r = await convs.act(selected, 'transfer', { to_agent: to });
  if (showResult(r)) {
    convs.addNote(selected, `已转接给「${r.body.transferred_to?.name ?? to}」`);
    ev.target.reset();
  }
});

document.addEventListener('click', alerts.unlock, { once: true });
document.addEventListener('keydown', alerts.unlock, { once: true });

// ---- start -----------------------------------------------------------------------------------

(async () => {
  const r = await api.me();
  if (r.ok) showApp(r.body.agent);
  else showSignIn(r.status === 401 || r.status === 0 ? '' : r.body.error);
})();
