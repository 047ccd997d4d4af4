// The reply box: text (Ctrl+Enter sends), an image (downscaled in the browser to a JPEG of at most
// 2 MB before it is sent), and the snippet picker. The image and snippet endpoints are newer than
// this page: each control is hidden when the gateway answers 404 for its endpoint.
import * as api from './api.js';
import * as chat from './chat.js';
import * as convs from './conversations.js';

const $ = (id) => document.getElementById(id);
const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
const MAX_SIDE = 2048;
let ctx = null;            // {me, onResult(r) → bool}
let imageProbed = false;
let snippetList = [];
let ownIds = new Set();      // the agent's own snippets among them

export function init(context) {
  ctx = context;
  const form = $('reply-form');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendText();
  });
  form.text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
  $('image-button').addEventListener('click', () => $('image-file').click());
  $('image-file').addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = '';
    if (file) await sendImageFile(file);
  });
  $('snippet-select').addEventListener('change', (ev) => {
    const s = snippetList.find((x) => String(x.id) === ev.target.value);
    ev.target.value = '';
    if (!s) return;
    const box = $('reply-form').text;
    box.setRangeText(s.text, box.selectionStart, box.selectionEnd, 'end');
    box.focus();
    // One of the agent's own: offer to remove it.
    const del = $('snippet-delete');
    del.hidden = !ownIds.has(s.id);
    del.dataset.id = String(s.id);
    del.textContent = `从我的常用语中删除「${s.text.length > 12 ? `${s.text.slice(0, 12)}…` : s.text}」`;
  });
  $('snippet-save').addEventListener('click', saveOwnSnippet);
  $('snippet-delete').addEventListener('click', deleteOwnSnippet);
}

// The reply box's text as one of the agent's own snippets.
async function saveOwnSnippet() {
  const text = $('reply-form').text.value;
  if (!text.trim()) {
    $('chat-error').textContent = '请先在输入框中填写要保存的常用语';
    return;
  }
  const r = await api.addOwnSnippet(text);
  $('chat-error').textContent = r.ok ? '' : r.body.error || '保存常用语失败';
  if (r.ok) await loadSnippets();
}

async function deleteOwnSnippet() {
  const button = $('snippet-delete');
  if (!window.confirm(`${button.textContent}？`)) return;
  const r = await api.deleteOwnSnippet(button.dataset.id);
  $('chat-error').textContent = r.ok ? '' : r.body.error || '删除常用语失败';
  button.hidden = true;
  await loadSnippets();
}

const current = () => convs.get(chat.currentKey());

// The customer-service window after a send, from its answer: the slots left, or (the reply
// waits behind the notice) closed or used up.
function windowAfter(before, w) {
  if (!w) return before;
  if (typeof w.remaining === 'number') return { ...before, open: true, remaining: w.remaining };
  if (w.status === 'exhausted') return { ...before, open: true, remaining: 0 };
  if (w.status === 'closed') return { open: false };
  return before;
}

// After a reply: the lock is ours, unread is cleared for everyone, the window count goes down,
// the list shows it.
function replied(c, r, type, text) {
  chat.addSent(r.body.outbox_id, type, text);
  convs.patch(c.key, { holder: { id: ctx.me().id, name: ctx.me().name }, unread: 0,
    window: windowAfter(c.window, r.body.window),
    last_message: { direction: 'out', type, preview: convs.previewOf(type, text),
      at: new Date().toISOString() } });
}

function refused(c, r) {
  if (r.status === 409 && 'holder' in r.body) convs.patch(c.key, { holder: r.body.holder });
}

async function sendText() {
  const c = current();
  const box = $('reply-form').text;
  const text = box.value;
  if (!c) return;
  if (!text.trim()) {
    $('chat-error').textContent = '请输入回复内容';
    return;
  }
  const button = $('reply-form').querySelector('button[type=submit]');
  button.disabled = true;
  const r = await api.conversationAction(c.account_id, c.openid, 'send', { text });
  button.disabled = false;
  if (r.ok) {
    box.value = '';
    replied(c, r, 'text', text);
    // No customer-service window: the text waits behind the "reply waiting" template notice.
    if (r.body.delivery === 'notice_sent' || r.body.delivery === 'notice_queued') {
      chat.addNote(`顾客当前无法直接接收客服消息，已通过“客服回复提醒”模板通知顾客${
        r.body.delivery === 'notice_sent' ? '' : '（通知发送中）'}，顾客点开通知即可查看此回复`);
    }
  } else {
    refused(c, r);
  }
  ctx.onResult(r);
}

// ---- images ----------------------------------------------------------------------------------

function hideImage() {
  $('image-button').hidden = true;
}

// Once, when a conversation is first opened: is the image endpoint there?
export async function probe(c) {
  if (imageProbed) return;
  imageProbed = true;
  const r = await api.probeSendImage(c.account_id, c.openid);
  if (r.status === 404) hideImage();
}

// Canvas → JPEG: the longest side at most MAX_SIDE, then lower quality and size until it fits.
export async function downscale(file, maxBytes = MAX_IMAGE_BYTES) {
  const bitmap = await createImageBitmap(file);
  let scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  let quality = 0.9;
  for (;;) {
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const g = canvas.getContext('2d');
    g.fillStyle = '#fff';  // transparent PNGs on white, not black
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
    if (blob && blob.size <= maxBytes) return blob;
    if (quality > 0.6) quality -= 0.15;
    else scale *= 0.75;
  }
}

async function sendImageFile(file) {
  const c = current();
  if (!c) return;
  if (!file.type.startsWith('image/')) {
    $('chat-error').textContent = '请选择图片文件';
    return;
  }
  $('chat-error').textContent = '正在处理图片…';
  let blob;
  try {
    blob = await downscale(file);
  } catch {
    $('chat-error').textContent = '无法读取该图片，请换一张';
    return;
  }
  const r = await api.sendImage(c.account_id, c.openid, blob);
  if (r.status === 404 && api.isMissingEndpoint(r)) {
    hideImage();
    $('chat-error').textContent = '当前版本暂不支持发送图片';
    return;
  }
  if (r.ok) replied(c, r, 'image', null);
  else refused(c, r);
  ctx.onResult(r);
}

// ---- snippets --------------------------------------------------------------------------------

// GET /api/snippets: the clinic's groups ({id, name, snippets: [{id, text}]}) and the agent's own.
export async function loadSnippets() {
  const r = await api.snippets();
  const groups = r.ok ? [...(r.body.groups || []),
    { name: '我的常用语', snippets: r.body.own || [] }] : [];
  snippetList = groups.flatMap((g) => g.snippets || []);
  ownIds = new Set(r.ok ? (r.body.own || []).map((s) => s.id) : []);
  const select = $('snippet-select');
  select.hidden = snippetList.length === 0;
  $('snippet-save').hidden = r.status === 404;
  const options = [new Option('插入常用语…', '')];
  for (const g of groups) {
    if (!g.snippets?.length) continue;
    const group = document.createElement('optgroup');
    group.label = g.name;
    for (const s of g.snippets) {
      group.append(new Option(s.text.length > 30 ? `${s.text.slice(0, 30)}…` : s.text, String(s.id)));
    }
    options.push(group);
  }
  select.replaceChildren(...options);
}
