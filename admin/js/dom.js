// Small DOM helpers shared by the pages: element building (text only, never HTML strings, so data
// from the server is never parsed as markup), forms' status lines and labels for the API's values.

// h('button', {type: 'button', testid: 'save', onclick: f}, '保存') → <button data-testid="save">.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'testid') el.dataset.testid = v;
    else if (k === 'className') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

// A status line under a form: say(el, '已保存') / say(el, r.body.error, 'error').
export function say(el, text, kind = 'ok') {
  el.textContent = text || '';
  el.className = `status ${text ? kind : ''}`;
}

// The answer's error, with the server's per-field problems (routing settings) as a list.
export function showError(el, r) {
  el.replaceChildren();
  el.className = 'status error';
  el.append(r.body.error || `操作失败（${r.status}）`);
  if (Array.isArray(r.body.problems) && r.body.problems.length > 1) {
    el.append(h('ul', {}, r.body.problems.map((p) =>
      h('li', { testid: 'problem' }, `${p.field}：${p.error}`))));
  }
}

export const roleLabels = {
  admin: '管理员', front_desk: '前台', consultant: '顾问', service: '客服',
};
export const ratingLabels = { good: '好', average: '中', poor: '差' };
export const stateLabels = { awaiting: '待评价', submitted: '已评价', replied: '已回复' };

// "2026-12-02T08:19:20.207Z" → the browser's local time, "2026/12/2 16:19:20".
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('zh-CN', { hour12: false });
}

// A page section: <section class="card"><h2>title</h2>…</section>.
export function section(title, testid, ...children) {
  return h('section', { className: 'card', testid }, h('h2', {}, title), ...children);
}

// <label>text <input …></label>
export function labelled(text, input, hint) {
  return h('label', { className: 'field' }, h('span', {}, text), input,
    hint ? h('small', { className: 'muted' }, hint) : null);
}
