// The gateway's agent API (docs/api.md "Agent API" and "The console"). Authentication is the
// HttpOnly cookie that sign-in sets: the page never reads or stores the token. Every call
// resolves to {ok, status, body}; a network failure is status 0 with a Chinese error text, like
// the gateway's own errors. URLs are built here and nowhere else. The administration pages
// (admin/js/api.js) use the same `call` and `query`.

export async function call(method, path, body, contentType) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body instanceof Blob || body instanceof FormData) {
    if (contentType) init.headers['Content-Type'] = contentType;
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, body: { error: '网络连接失败，请检查网络后重试' } };
  }
  let data = {};
  try {
    data = await res.json();
  } catch {
    data = res.ok ? {} : { error: `服务器返回了错误（${res.status}）` };
  }
  return { ok: res.ok, status: res.status, body: data };
}

// The router's own 404 (an endpoint this gateway does not have yet), as opposed to the
// endpoint's "not found" answers in Chinese.
export const isMissingEndpoint = (r) => r.status === 404 && r.body?.error === 'not found';

// A query string from the members that are set ("?state=submitted&page=2"), or "".
export const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
};

// ---- the agent ---------------------------------------------------------------------------------

export const signIn = (clinic, name, password) =>
  call('POST', '/api/agent/sign-in', { clinic, name, password });
export const signOut = () => call('POST', '/api/agent/sign-out', {});
export const me = () => call('GET', '/api/agent/me');
export const setAccepting = (accepting) => call('POST', '/api/agent/accepting', { accepting });
export const changePassword = (oldPassword, newPassword) =>
  call('POST', '/api/agent/password', { old_password: oldPassword, new_password: newPassword });
export const agents = () => call('GET', '/api/agents');

// ---- conversations -----------------------------------------------------------------------------

// {filter, store, q, limit, cursor} → {conversations, next_cursor}
export const conversations = (params) => call('GET', `/api/conversations${query(params)}`);

const convPath = (accountId, openid, action) =>
  `/api/conversations/${encodeURIComponent(accountId)}/${encodeURIComponent(openid)}/${action}`;

// accept, send, end, transfer, ignore-unread, fan, owner, bind-patient, unbind-patient.
export const conversationAction = (accountId, openid, action, body = {}) =>
  call('POST', convPath(accountId, openid, action), body);

// One page of history, newest first: {messages, next_before}.
export const messages = (accountId, openid, before, limit = 30) =>
  call('GET', `${convPath(accountId, openid, 'messages')}${query({ before, limit })}`);

export const fan = (accountId, openid) => call('GET', convPath(accountId, openid, 'fan'));

// ---- media -------------------------------------------------------------------------------------

// Where the page loads a message's media. Voice arrives as AMR/Speex, which browsers do not play:
// the gateway is getting a browser-playable transcode, asked for with `?format=mp3` (assumed; the
// one line to change if it is named otherwise).
export function mediaUrl(message) {
  const url = message.media?.url;
  if (!url) return null;
  return message.type === 'voice' ? `${url}?format=mp3` : url;
}

// ---- endpoints other work is adding (hidden when the gateway answers 404) ---------------------

// Sends an image to the fan: the JPEG bytes as the raw body (`POST …/send-image`, JPEG or PNG of
// at most 2 MB), answering like send: {outbox_id, …}.
export const sendImage = (accountId, openid, blob) =>
  call('POST', convPath(accountId, openid, 'send-image'), blob, blob.type || 'image/jpeg');

// Is send-image there? A GET is harmless either way: the router answers 404 without it, the
// endpoint itself refuses the method.
export const probeSendImage = (accountId, openid) =>
  call('GET', convPath(accountId, openid, 'send-image'));

// The snippets an agent may insert: {"groups":[{id, name, snippets:[{id, text}]}], "own":[…]}.
export const snippets = () => call('GET', '/api/snippets');
// The agent's own snippets: add one (last), remove one.
export const addOwnSnippet = (text) => call('POST', '/api/agent/snippets', { text });
export const deleteOwnSnippet = (id) => call('DELETE', `/api/agent/snippets/${encodeURIComponent(id)}`);
