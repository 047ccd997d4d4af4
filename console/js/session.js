// The open conversation's head: who it is, who holds it (a banner when another agent does), the
// customer-service window, and the actions accept / end / transfer (to an agent or a store) /
// ignore unread. Each answer updates the list entry; a 409 names the holder.
import * as api from './api.js';
import * as agents from './agents.js';
import * as chat from './chat.js';
import * as convs from './conversations.js';

const $ = (id) => document.getElementById(id);
let ctx = null;  // {me, onResult(r) → bool}

export function init(context) {
  ctx = context;
  $('accept').addEventListener('click', () => act('accept', {}));
  $('end').addEventListener('click', async () => {
    if (await act('end', {})) chat.addNote('您结束了此会话');
  });
  $('ignore-unread').addEventListener('click', () => act('ignore-unread', {}));
  $('transfer-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const [kind, id] = ev.target.to.value.split(':');
    if (!id) return;
    const body = kind === 'store' ? { to_store: Number(id) } : { to_agent: Number(id) };
    const r = await act('transfer', body);
    if (r) {
      const name = kind === 'store' ? agents.storeName(Number(id)) :
        r.body.transferred_to?.name ?? id;
      chat.addNote(`已转接给「${name}」`);
      ev.target.reset();
    }
  });
}

const current = () => convs.get(chat.currentKey());

// Runs an action on the open conversation; resolves to the answer when it succeeded, else null.
async function act(action, body) {
  const c = current();
  if (!c) return null;
  const r = await api.conversationAction(c.account_id, c.openid, action, body);
  if (r.ok) {
    if (action === 'accept') convs.patch(c.key, { holder: r.body.holder });
    if (action === 'end' || body.to_store) convs.patch(c.key, { holder: null });
    if (action === 'transfer' && body.to_agent) convs.patch(c.key, { holder: r.body.transferred_to });
    if (action === 'ignore-unread') convs.patch(c.key, { unread: 0 });
  } else if (r.status === 409 && 'holder' in r.body) {
    convs.patch(c.key, { holder: r.body.holder });
  }
  return ctx.onResult(r) ? r : null;
}

function fillTransfer() {
  const c = current();
  const select = $('transfer-form').to;
  const items = agents.all()
    .filter((a) => a.can_receive && a.online && a.id !== ctx.me().id)
    .map((a) => ({ value: `agent:${a.id}`, label: `客服：${a.name}` }));
  for (const s of agents.stores()) {
    if (!c || s.id !== c.store_id) items.push({ value: `store:${s.id}`, label: `门店：${s.name}` });
  }
  agents.fillSelect(select, items, items.length ? '转接给…' : '暂无可转接的在线客服');
}

function holderMarker(c) {
  if (!c.holder) return null;
  const mine = c.holder.id === ctx.me().id;
  const s = document.createElement('span');
  s.className = `marker ${mine ? 'mine' : 'other'}`;
  s.textContent = mine ? '由我接待' : `「${c.holder.name ?? `客服 ${c.holder.id}`}」接待中`;
  s.dataset.testid = 'holder-marker';
  return s;
}

// Markers for a conversation: holder, consultant, exclusive agent (also used by the list).
export function markers(c) {
  const spans = [];
  const h = holderMarker(c);
  if (h) spans.push(h);
  for (const [field, label] of [['consultant', '顾问'], ['exclusive', '专属']]) {
    const who = c[field];
    if (!who) continue;
    const s = document.createElement('span');
    s.className = 'marker owner';
    s.textContent = `${label}：${who.id === ctx.me().id ? '我' : who.name ?? who.id}`;
    spans.push(s);
  }
  return spans;
}

function windowText(w) {
  if (!w) return '';
  if (!w.open) return '客服消息窗口已关闭：需顾客先发消息';
  const until = w.closes_at ? `，${new Date(w.closes_at).toLocaleString('zh-CN')} 前` : '';
  return `还可发送 ${w.remaining} 条${until}`;
}

export function render() {
  const c = current();
  if (!c) return;
  $('chat-title').textContent = c.display_name;
  $('chat-title').title = c.openid;
  $('chat-markers').replaceChildren(...markers(c));
  $('chat-window').textContent = windowText(c.window);
  $('ignore-unread').hidden = !(c.unread > 0);
  const other = c.holder && c.holder.id !== ctx.me().id;
  $('holder-banner').hidden = !other;
  if (other) {
    $('holder-banner').textContent =
      `该顾客正在由「${c.holder.name ?? `客服 ${c.holder.id}`}」接待，您暂时无法回复`;
  }
  const mine = c.holder && !other;
  $('accept').hidden = Boolean(mine);
  $('end').hidden = !mine;
  $('transfer-form').hidden = !mine;
  if (mine) fillTransfer();
}
