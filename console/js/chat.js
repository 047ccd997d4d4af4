// The history pane: the open conversation's messages from GET …/messages (paged back with
// "earlier messages"), the fan's new messages and this page's replies as they happen, and each
// reply's delivery state (queued → sent / failed / uncertain) from `delivery` pushes. Without
// such pushes the newest page is read once more a few seconds after a reply.
import * as api from './api.js';

const $ = (id) => document.getElementById(id);
let cur = null;            // {key, accountId, openid, items, nextBefore}
let sawDelivery = false;   // the gateway sends `delivery` pushes
const earlyDeliveries = new Map();  // outbox id → a delivery push for a row not shown yet
let seq = 0;               // orders items with the same time

export const currentKey = () => cur?.key ?? null;

export async function open(c) {
  cur = { key: c.key, accountId: c.account_id, openid: c.openid, items: [], nextBefore: null };
  render();
  const r = await loadPage(cur, null);
  scrollToEnd();
  return r;
}

export function close() {
  cur = null;
}

export function loadOlder() {
  if (!cur || cur.nextBefore === null) return null;
  const ol = $('messages');
  const fromEnd = ol.scrollHeight - ol.scrollTop;
  return loadPage(cur, cur.nextBefore).then((r) => {
    ol.scrollTop = ol.scrollHeight - fromEnd;
    return r;
  });
}

// One page from the gateway, merged with what is shown (newest page: also refreshes states).
async function loadPage(target, before) {
  const r = await api.messages(target.accountId, target.openid, before);
  if (target !== cur || !r.ok) return r;
  for (const m of r.body.messages || []) upsert(target, { ...m, key: `${m.direction}:${m.id}` });
  if (before !== null || target.nextBefore === null) target.nextBefore = r.body.next_before ?? null;
  render();
  if (before === null) awaitMedia(target);
  return r;
}

// Media still being fetched from WeChat: the newest page is read again a few times.
function awaitMedia(target) {
  const waiting = target.items.some((m) => m.media &&
    (m.media.state === 'pending' || m.media.state === 'fetching'));
  if (!waiting) return;
  target.mediaRetries = (target.mediaRetries ?? 0) + 1;
  if (target.mediaRetries > 5) return;
  setTimeout(() => {
    if (target === cur) loadPage(target, null);
  }, 3000);
}

function upsert(target, item) {
  const old = target.items.find((i) => i.key === item.key);
  if (old) {
    Object.assign(old, item, { el: null });
    return;
  }
  item.seq = ++seq;
  target.items.push(item);
}

const now = () => new Date().toISOString();

// A reply this page just sent (its outbox row).
export function addSent(outboxId, type, text) {
  if (!cur) return;
  upsert(cur, { key: `out:${outboxId}`, direction: 'out', id: outboxId, type, text, at: now(),
    state: 'queued', origin: 'agent' });
  // Its delivery push may have come before the send's answer.
  const early = earlyDeliveries.get(outboxId);
  earlyDeliveries.delete(outboxId);
  if (early) applyDelivery(cur.items.find((i) => i.key === `out:${outboxId}`), early);
  render();
  scrollToEnd();
  if (!sawDelivery) {
    const target = cur;
    setTimeout(() => {
      const m = target.items.find((i) => i.key === `out:${outboxId}`);
      if (target === cur && m && (m.state === 'queued' || m.state === 'sending')) {
        loadPage(target, null);
      }
    }, 5000);
  }
}

// A line of this page's own (「您结束了此会话」…).
export function addNote(text) {
  if (!cur) return;
  upsert(cur, { key: `note:${++seq}`, direction: 'note', text, at: now() });
  render();
  scrollToEnd();
}

function applyDelivery(m, msg) {
  Object.assign(m, { state: msg.state, errcode: msg.errcode ?? null,
    error: msg.reason ?? null, el: null });
}

export function onPush(msg) {
  if (msg.type === 'delivery') {
    sawDelivery = true;
    const m = cur?.items.find((i) => i.key === `out:${msg.outbox_id}`);
    if (!m) {
      // Perhaps a reply of ours whose send has not answered yet: kept (a few) for addSent.
      earlyDeliveries.set(msg.outbox_id, msg);
      if (earlyDeliveries.size > 50) earlyDeliveries.delete(earlyDeliveries.keys().next().value);
      return;
    }
    applyDelivery(m, msg);
    render();
    return;
  }
  if (msg.type !== 'message' || !cur || `${msg.account_id}/${msg.openid}` !== cur.key) return;
  upsert(cur, { key: `in:${msg.message_id}`, direction: 'in', id: msg.message_id,
    type: msg.msg_type, text: msg.content ?? null, at: now(), media: null });
  render();
  scrollToEnd();
  // The push carries no media: read the page again once the file has had time to arrive.
  if (msg.msg_type !== 'text') {
    const target = cur;
    target.mediaRetries = 0;
    setTimeout(() => {
      if (target === cur) loadPage(target, null);
    }, 2000);
  }
}

// ---- rendering -------------------------------------------------------------------------------

const autoNames = { welcome: '欢迎语', consultant_offline: '顾问离线提示', after_hours: '非工作时间',
  no_agent: '无客服在线', timeout: '超时未回复' };
const eventNames = { subscribe: '关注了公众号', unsubscribe: '取消了关注', SCAN: '扫描了二维码',
  CLICK: '点击了菜单', VIEW: '打开了菜单链接', LOCATION: '上报了位置',
  TEMPLATESENDJOBFINISH: '模板消息送达回执' };
const stateNames = { queued: '待发送', sending: '发送中', sent: '✓ 已发送', failed: '✗ 发送失败',
  uncertain: '? 发送结果未知' };
const typeNames = { image: '[图片]', voice: '[语音]', video: '[视频]', shortvideo: '[小视频]',
  location: '[位置]', link: '[链接]', file: '[文件]' };

const time = (at) => new Date(at).toLocaleString('zh-CN', { month: 'numeric', day: 'numeric',
  hour: '2-digit', minute: '2-digit' });

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The message's body: text, or its media as the browser can show it.
function content(m) {
  const url = api.mediaUrl(m);
  const parts = [];
  if (url && m.type === 'image') {
    const img = el('img', 'media');
    img.src = url;
    img.alt = '图片';
    img.loading = 'lazy';
    const a = el('a');
    a.href = url;
    a.target = '_blank';
    a.append(img);
    parts.push(a);
  } else if (url && m.type === 'voice') {
    const audio = el('audio');
    audio.controls = true;
    audio.preload = 'none';
    audio.src = url;
    audio.dataset.testid = 'voice';
    audio.addEventListener('error', () => audio.after(el('span', 'muted', '（此语音无法在浏览器中播放）')),
      { once: true });
    parts.push(audio);
  } else if (url && (m.type === 'video' || m.type === 'shortvideo')) {
    const video = el('video', 'media');
    video.controls = true;
    video.preload = 'none';
    video.src = url;
    parts.push(video);
  } else if (m.media?.external_url) {
    const a = el('a', '', '[视频] 打开链接');
    a.href = m.media.external_url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    parts.push(a);
  } else if (m.type !== 'text' && !m.text) {
    const pending = m.media && m.media.state !== 'fetched' ?
      `（${m.media.state === 'failed' || m.media.state === 'expired' ? '文件获取失败' : '文件获取中'}）` : '';
    parts.push(el('span', '', `${typeNames[m.type] || `[${m.type}]`}${pending}`));
  }
  if (m.text) parts.push(el('div', 'text', m.text));
  return parts;
}

function meta(m) {
  const bits = [time(m.at)];
  if (m.direction === 'out') {
    if (m.auto_reply) bits.push(`自动回复（${autoNames[m.auto_reply] || m.auto_reply}）`);
    else if (m.agent?.name) bits.push(m.agent.name);
    bits.push(stateNames[m.state] || m.state);
    if (m.state === 'failed' && (m.error || m.errcode)) {
      bits.push(`${m.error || ''}${m.errcode ? `（错误码 ${m.errcode}）` : ''}`);
    }
  } else if (m.routing?.auto_reply) {
    bits.push(`已自动回复（${autoNames[m.routing.auto_reply] || m.routing.auto_reply}）`);
  }
  const span = el('span', 'meta', bits.join(' · '));
  if (m.direction === 'out') span.dataset.state = m.state;
  return span;
}

function build(m) {
  if (m.direction === 'note' || m.type === 'event') {
    const text = m.direction === 'note' ? m.text :
      `${time(m.at)} 顾客${eventNames[m.event] || `触发了事件 ${m.event}`}`;
    const li = el('li', 'note', text);
    li.dataset.testid = 'message-note';
    return li;
  }
  const li = el('li', m.direction + (m.auto_reply ? ' auto' : '') +
    (m.state === 'failed' ? ' failed' : ''));
  li.dataset.testid = `message-${m.direction}`;
  li.append(...content(m), meta(m));
  return li;
}

function render() {
  const ol = $('messages');
  if (!cur) {
    ol.replaceChildren();
    return;
  }
  cur.items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.seq - b.seq);
  for (const m of cur.items) m.el ??= build(m);
  ol.replaceChildren(...cur.items.map((m) => m.el));
  $('older').hidden = cur.nextBefore === null;
}

function scrollToEnd() {
  const ol = $('messages');
  ol.scrollTop = ol.scrollHeight;
}
