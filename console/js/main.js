// The console page's wiring: sign-in and sign-out, the conversation list and its filters, which
// conversation is open, and where each push goes. The parts live in their own modules:
// conversations.js (list state), chat.js (history pane), session.js (the chat head and its
// actions), compose.js (the reply box), fanpanel.js, agents.js, account.js, live.js, alerts.js.
import * as account from './account.js';
import * as agents from './agents.js';
import * as alerts from './alerts.js';
import * as api from './api.js';
import * as chat from './chat.js';
import * as compose from './compose.js';
import * as convs from './conversations.js';
import * as fanpanel from './fanpanel.js';
import * as session from './session.js';
import { connectLive } from './live.js';

const $ = (id) => document.getElementById(id);
let me = null;        // the signed-in agent
let live = null;      // the WebSocket

// ---- views ----------------------------------------------------------------------------------

function showSignIn(message = '') {
  if (live) live.stop();
  live = null;
  me = null;
  chat.close();
  fanpanel.hide();
  convs.clear();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
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
  $('filter').value = 'all';
  $('search').value = '';
  $('filter-consultant').hidden = !['front_desk', 'admin'].includes(agent.role);
  render();
  live = connectLive({ onMessage: onPush, onState: onLiveState, onSignedOut: () =>
    showSignIn('登录已过期，请重新登录') });
  const r = await convs.reload();
  if (handleAuth(r)) return;
  await agents.load();
  fillStoreFilter();
  compose.loadSnippets();
}

// 401 anywhere: back to sign-in with the gateway's reason.
function handleAuth(r) {
  if (r && r.status === 401) {
    showSignIn(r.body.error);
    return true;
  }
  return false;
}

// An action's answer in the chat pane: its error, or nothing. True when it succeeded.
function showResult(r) {
  if (r.ok) {
    $('chat-error').textContent = '';
    return true;
  }
  if (handleAuth(r)) return false;
  $('chat-error').textContent = r.body.error || `操作失败（${r.status}）`;
  return false;
}

const context = { me: () => me, onResult: showResult, onAuth: handleAuth };
session.init(context);
compose.init(context);
fanpanel.init(context);
account.init(context);

// ---- the list ------------------------------------------------------------------------------

function fillStoreFilter() {
  const select = $('store-filter');
  const stores = agents.stores();
  select.hidden = stores.length === 0;
  agents.fillSelect(select, stores.map((s) => ({ value: s.id, label: s.name })), '全部门店');
}

const shortTime = (at) => {
  if (!at) return '';
  const d = new Date(at);
  return d.toDateString() === new Date().toDateString() ?
    d.toLocaleTimeString('zh-CN', { hour: '2-digit', minute: '2-digit' }) :
    d.toLocaleDateString('zh-CN', { month: 'numeric', day: 'numeric' });
};

function listItem(c) {
  const li = document.createElement('li');
  li.dataset.key = c.key;
  li.dataset.testid = 'conversation';
  if (c.key === chat.currentKey()) li.classList.add('selected');
  const row = document.createElement('div');
  row.className = 'row';
  const name = document.createElement('strong');
  name.textContent = c.display_name;
  name.dataset.testid = 'conversation-name';
  const right = document.createElement('span');
  right.append(...session.markers(c));
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
  const lm = c.last_message;
  last.textContent = lm ? `${shortTime(lm.at)} ${lm.direction === 'out' ? '我方：' : ''}${lm.preview}` : '';
  li.append(row, last);
  li.tabIndex = 0;
  li.addEventListener('click', () => select(c.key));
  li.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') select(c.key);
  });
  return li;
}

function render() {
  const items = me ? convs.list() : [];
  $('conversations').replaceChildren(...items.map(listItem));
  $('list-empty').hidden = items.length > 0;
  $('list-error').textContent = convs.error();
  $('load-more').hidden = !convs.hasMore();
  const open = Boolean(chat.currentKey());
  $('chat-empty').hidden = open;
  $('chat').hidden = !open;
  if (open) session.render();
  alerts.setTitleBadge(convs.totalUnread());
}
convs.subscribe(render);

async function select(key) {
  const c = convs.get(key);
  if (!c) return;
  $('chat-error').textContent = '';
  $('reply-form').text.value = '';
  const opening = chat.open(c);
  render();
  fanpanel.show(c);
  compose.probe(c);
  agents.load().then(render);  // who is online now, for the transfer picker
  const r = await opening;
  if (r && !r.ok) showResult(r);  // e.g. another store's fan, or the gateway is unavailable
}

$('filter').addEventListener('change', (ev) => convs.setQuery({ filter: ev.target.value }).then(handleAuth));
$('store-filter').addEventListener('change', (ev) => convs.setQuery({ store: ev.target.value }).then(handleAuth));
let searchTimer = null;
$('search').addEventListener('input', (ev) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => convs.setQuery({ q: ev.target.value.trim() }).then(handleAuth), 300);
});
$('load-more').addEventListener('click', () => convs.loadMore());
$('older').addEventListener('click', () => chat.loadOlder());

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
      if (msg.came_online) convs.reload().then(handleAuth);  // the backlog may show others now
      break;
    case 'message':
      convs.onPush(msg, me);
      chat.onPush(msg);
      alerts.chime();
      break;
    case 'transfer':
      convs.onPush(msg, me);
      if (chat.currentKey() === convs.keyOf(msg.account_id, msg.openid)) {
        chat.addNote(`「${msg.from?.name ?? '其他客服'}」将此会话转接给了您`);
      }
      alerts.chime();
      break;
    case 'lock':
    case 'unread':
    case 'owner':
    case 'fan':
      convs.onPush(msg, me);
      fanpanel.onPush(msg);
      break;
    case 'delivery':
      chat.onPush(msg);
      break;
    case 'presence': {
      // Another agent came online or went offline: the agents view (and pickers) follow.
      const render = () => {
        if ($('agents-dialog').open) agents.renderView($('agents-view'));
      };
      if (agents.setOnline(msg.agent?.id, msg.online)) render();
      else agents.load().then(render);
      break;
    }
    case 'resync': {
      // Some pushes are lost: read what is shown again.
      convs.reload().then(handleAuth);
      const c = convs.get(chat.currentKey());
      if (c) chat.open(c);
      break;
    }
    default:
      break;  // unknown types are ignored (docs/api.md)
  }
}

// ---- the top bar -----------------------------------------------------------------------------

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
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

$('show-agents').addEventListener('click', async () => {
  const r = await agents.load();
  if (handleAuth(r)) return;
  agents.renderView($('agents-view'));
  $('agents-dialog').showModal();
});

// ---- start -----------------------------------------------------------------------------------

(async () => {
  const r = await api.me();
  if (r.ok) showApp(r.body.agent);
  else showSignIn(r.status === 401 || r.status === 0 ? '' : r.body.error);
})();
