// The gateway's API for the administration pages (docs/api.md "Administration", "Evaluations").
// Authentication is the console's HttpOnly cookie set by sign-in: the page never reads or keeps the
// token. Every call resolves to {ok, status, body}; a network failure is status 0 with a Chinese
// error text, like the gateway's own errors.
// (The console has the same small wrapper in console/js/api.js, unexported; this copy keeps the two
// pages independent while the console is being reworked.)

export async function call(method, path, body) {
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

export const get = (path) => call('GET', path);
export const post = (path, body = {}) => call('POST', path, body);
export const put = (path, body) => call('PUT', path, body);
export const del = (path) => call('DELETE', path);

// A query string from the members that are set ("?state=submitted&page=2"), or "".
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const signIn = (clinic, name, password) =>
  post('/api/agent/sign-in', { clinic, name, password });
export const signOut = () => post('/api/agent/sign-out');
export const me = () => get('/api/agent/me');
