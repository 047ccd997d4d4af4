// The gateway's agent API (docs/api.md). Authentication is the HttpOnly cookie that sign-in sets:
// the page never reads or stores the token. Every call resolves to {ok, status, body}; a network
// failure is status 0 with a Chinese error text, like the gateway's own errors.

async function call(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
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

export const signIn = (clinic, name, password) =>
  call('POST', '/api/agent/sign-in', { clinic, name, password });
export const signOut = () => call('POST', '/api/agent/sign-out', {});
export const me = () => call('GET', '/api/agent/me');
export const setAccepting = (accepting) => call('POST', '/api/agent/accepting', { accepting });
export const backlog = () => call('GET', '/api/agent/backlog');

// POST /api/conversations/{account_id}/{openid}/{action}
export function conversationAction(accountId, openid, action, body = {}) {
  const path = `/api/conversations/${encodeURIComponent(accountId)}/` +
    `${encodeURIComponent(openid)}/${action}`;
  return call('POST', path, body);
}
