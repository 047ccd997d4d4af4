// People and places: agents (create, role, store, consultation permission, password reset,
// deactivation with the hand-over of their fans), stores (create, rename, permanent QR codes per
// official account) and official accounts (secrets are write-only: never shown, only replaced).
import * as api from './api.js';
import { h, section, labelled, say, showError, roleLabels, when } from './dom.js';

let agents = [];
let stores = [];
let accounts = [];

const storeName = (id) => (stores.find((s) => s.id === id) || {}).name || '';

function roleSelect(value, testid) {
  return h('select', { testid }, Object.entries(roleLabels).map(([v, label]) =>
    h('option', { value: v, selected: v === value }, label)));
}
function storeSelect(value, testid) {
  return h('select', { testid }, h('option', { value: '' }, '（无门店）'),
    stores.map((s) => h('option', { value: String(s.id), selected: s.id === value }, s.name)));
}
const storeValue = (select) => (select.value === '' ? null : Number(select.value));

// Receivers for one role of a deactivated agent's fans: active agents other than `except`.
export function receiverPicker(except, testid, candidates = agents) {
  const boxes = candidates.filter((a) => a.active && !except.includes(a.id)).map((a) =>
    h('label', { className: 'chip' }, h('input', { type: 'checkbox', value: String(a.id) }),
      `${a.name}（${roleLabels[a.role]}）`));
  const distribution = h('select', { testid: `${testid}-distribution` },
    h('option', { value: 'round_robin' }, '轮流分配'), h('option', { value: 'average' }, '平均随机分配'));
  const box = h('div', { className: 'picker', testid }, boxes.length ? boxes
    : h('span', { className: 'muted' }, '没有可接收的客服'),
  h('div', {}, labelled('分配方式', distribution)),
  h('small', { className: 'muted' }, '不选择接收人：这些顾客将不再有此归属。'));
  box.read = () => {
    const to = boxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value));
    return to.length ? { to_agents: to, distribution: distribution.value } : { to_agents: [] };
  };
  return box;
}

function agentRow(a, refresh) {
  const role = roleSelect(a.role, 'agent-role');
  const store = storeSelect(a.store_id, 'agent-store');
  const canReceive = h('input', { type: 'checkbox', checked: a.can_receive, testid: 'agent-can-receive' });
  const status = h('div', { className: 'status', testid: 'agent-status' });
  const save = async () => {
    const body = {};
    if (role.value !== a.role) body.role = role.value;
    if (storeValue(store) !== a.store_id) body.store_id = storeValue(store);
    if (canReceive.checked !== a.can_receive) body.can_receive = canReceive.checked;
    if (!Object.keys(body).length) return say(status, '没有变化');
    const r = await api.put(`/api/admin/agents/${a.id}`, body);
    if (!r.ok) return showError(status, r);
    Object.assign(a, r.body.agent);
    say(status, '已保存');
  };
  const resetPassword = async () => {
    const password = prompt(`为「${a.name}」设置新密码（至少 8 个字符）：`);
    if (password === null) return;
    const r = await api.post(`/api/admin/agents/${a.id}/password`, { password });
    if (!r.ok) return showError(status, r);
    say(status, '密码已重置，旧密码不能再登录');
  };
  const handover = h('div', { className: 'handover' });
  const deactivate = async (body = {}) => {
    const r = await api.post(`/api/admin/agents/${a.id}/deactivate`, body);
    if (r.status === 409 && (r.body.consultant_fans || r.body.exclusive_fans)) {
      // It still owns fans: ask where they go, role by role.
      handover.replaceChildren(h('p', { className: 'error' }, r.body.error));
      const pickers = {};
      for (const [key, title] of [['consultant_fans', '作为顾问的顾客'], ['exclusive_fans', '作为专属客服的顾客']]) {
        if (!r.body[key]) continue;
        pickers[key] = receiverPicker([a.id], `handover-${key}`,
          key === 'exclusive_fans' ? agents.filter((x) => x.can_receive) : agents);
        handover.append(h('h4', {}, `${title}（${r.body[key]} 位）交给：`), pickers[key]);
      }
      handover.append(h('button', { type: 'button', testid: 'handover-confirm', onclick: () => {
        const next = {};
        for (const [key, p] of Object.entries(pickers)) next[key] = p.read();
        deactivate(next);
      } }, '确认停用'));
      return;
    }
    if (!r.ok) return showError(status, r);
    handover.replaceChildren();
    refresh();
  };
  return h('tr', { testid: 'agent-row', dataset: { agentId: String(a.id) } },
    h('td', {}, a.name, a.active ? '' : h('span', { className: 'tag' }, '已停用')),
    h('td', {}, a.active ? role : roleLabels[a.role]),
    h('td', {}, a.active ? store : storeName(a.store_id)),
    h('td', {}, a.active ? canReceive : (a.can_receive ? '是' : '否')),
    h('td', {}, a.active ? [
      h('button', { type: 'button', testid: 'agent-save', onclick: save }, '保存'),
      h('button', { type: 'button', className: 'link', onclick: resetPassword }, '重置密码'),
      h('button', { type: 'button', className: 'link danger', testid: 'agent-deactivate',
        onclick: () => confirm(`确定停用「${a.name}」吗？`) && deactivate() }, '停用'),
    ] : null, status, handover));
}

function agentsSection(refresh) {
  const name = h('input', { testid: 'new-agent-name', required: true });
  const role = roleSelect('service', 'new-agent-role');
  const store = storeSelect(null, 'new-agent-store');
  const canReceive = h('input', { type: 'checkbox', checked: true });
  const password = h('input', { type: 'password', testid: 'new-agent-password', required: true,
    autocomplete: 'new-password', minlength: 8 });
  const status = h('div', { className: 'status', testid: 'new-agent-status' });
  const form = h('form', { className: 'inline-form', testid: 'new-agent' },
    labelled('姓名', name), labelled('角色', role), labelled('门店', store),
    h('label', { className: 'switch' }, canReceive, '接待在线咨询'), labelled('初始密码', password),
    h('button', { type: 'submit' }, '添加客服'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await api.post('/api/admin/agents', { name: name.value.trim(), role: role.value,
      store_id: storeValue(store), can_receive: canReceive.checked, password: password.value });
    if (!r.ok) return showError(status, r);
    refresh();
  });
  return section('客服', 'agents',
    h('table', { className: 'grid' },
      h('thead', {}, h('tr', {}, ['姓名', '角色', '门店', '接待在线咨询', '操作'].map((t) => h('th', {}, t)))),
      h('tbody', {}, agents.map((a) => agentRow(a, refresh)))),
    h('h3', {}, '添加客服'), form);
}

function storeRow(s, refresh) {
  const name = h('input', { value: s.name, testid: 'store-name' });
  const status = h('div', { className: 'status' });
  const rename = async () => {
    const r = await api.put(`/api/admin/stores/${s.id}`, { name: name.value.trim() });
    if (!r.ok) return showError(status, r);
    say(status, Object.keys(r.body.changed).length ? '已改名' : '没有变化');
  };
  const codes = h('ul', { className: 'qr-list' });
  const showCodes = (list) => codes.replaceChildren(...list.map((q) => {
    const account = accounts.find((x) => x.id === q.account_id);
    return h('li', { testid: 'store-qr' }, `${account ? account.appid : q.appid}：`,
      h('a', { href: q.image_url, target: '_blank', rel: 'noopener noreferrer' }, '下载 / 打印二维码图片'),
      '　', h('a', { href: q.url, target: '_blank', rel: 'noopener noreferrer' }, '二维码链接'));
  }));
  showCodes(s.qr_codes);
  const account = h('select', {}, accounts.map((a) => h('option', { value: String(a.id) }, a.appid)));
  const makeQr = async () => {
    const r = await api.post(`/api/admin/stores/${s.id}/qr`, { account_id: Number(account.value) });
    if (!r.ok) return showError(status, r);
    if (!s.qr_codes.some((q) => q.account_id === r.body.qr.account_id)) s.qr_codes.push(r.body.qr);
    showCodes(s.qr_codes);
    say(status, '二维码已生成（永久有效）');
  };
  return h('tr', { testid: 'store-row' }, h('td', {}, name,
    h('button', { type: 'button', className: 'link', onclick: rename }, '改名')),
  h('td', {}, String(s.active_agents)),
  h('td', {}, codes, accounts.length ? [account,
    h('button', { type: 'button', onclick: makeQr }, '生成门店二维码')] : h('span', { className: 'muted' }, '请先添加公众号'),
  status));
}

function storesSection(refresh) {
  const name = h('input', { testid: 'new-store-name', required: true });
  const status = h('div', { className: 'status' });
  const form = h('form', { className: 'inline-form' }, labelled('门店名称', name),
    h('button', { type: 'submit' }, '添加门店'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await api.post('/api/admin/stores', { name: name.value.trim() });
    if (!r.ok) return showError(status, r);
    refresh();
  });
  return section('门店', 'stores',
    h('p', { className: 'muted' }, '顾客扫描门店二维码并关注后，即绑定到该门店（连锁门店模式下只分配给该门店的客服）。'),
    h('table', { className: 'grid' },
      h('thead', {}, h('tr', {}, ['门店', '在职客服', '二维码'].map((t) => h('th', {}, t)))),
      h('tbody', {}, stores.map((s) => storeRow(s, refresh)))),
    form);
}

function accountForm(existing, refresh) {
  const fields = {
    appid: h('input', { value: existing ? existing.appid : '', disabled: !!existing, placeholder: 'wx…' }),
    original_id: h('input', { value: existing ? existing.original_id : '', placeholder: 'gh_…' }),
    token: h('input', { type: 'password', autocomplete: 'off', placeholder: existing ? '不修改请留空' : '' }),
    aes_key: h('input', { type: 'password', autocomplete: 'off', placeholder: existing ? '不修改请留空' : '43 位' }),
    secret: h('input', { type: 'password', autocomplete: 'off', placeholder: existing ? '不修改请留空' : '' }),
  };
  const safe = h('input', { type: 'checkbox', checked: existing ? existing.safe_mode_only : true });
  const status = h('div', { className: 'status' });
  const form = h('form', { className: 'inline-form' },
    labelled('AppID', fields.appid), labelled('原始 ID', fields.original_id),
    labelled('令牌（Token）', fields.token), labelled('消息加解密密钥（EncodingAESKey）', fields.aes_key),
    labelled('AppSecret', fields.secret), h('label', { className: 'switch' }, safe, '仅接受安全模式'),
    h('button', { type: 'submit' }, existing ? '保存修改' : '添加公众号'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    for (const [k, el] of Object.entries(fields)) {
      if (el.disabled) continue;
      const v = el.value.trim();
      if (v !== '' && !(existing && existing[k] === v)) body[k] = v;
    }
    if (!existing || safe.checked !== existing.safe_mode_only) body.safe_mode_only = safe.checked;
    const r = existing ? await api.put(`/api/admin/accounts/${existing.id}`, body)
      : await api.post('/api/admin/accounts', { appid: fields.appid.value.trim(), ...body });
    if (!r.ok) return showError(status, r);
    for (const el of [fields.token, fields.aes_key, fields.secret]) el.value = '';
    refresh();
  });
  return form;
}

function accountsSection(refresh) {
  return section('公众号', 'accounts',
    h('p', { className: 'muted' }, '令牌、EncodingAESKey 和 AppSecret 加密保存，只能写入或替换，不会显示。'),
    accounts.map((a) => h('details', { testid: 'account-row' },
      h('summary', {}, `${a.appid}（${a.original_id}）${a.safe_mode_only ? ' · 仅安全模式' : ''}`,
        h('small', { className: 'muted' }, `　更新于 ${when(a.updated_at)}`)),
      accountForm(a, refresh))),
    h('h3', {}, '添加公众号'), accountForm(null, refresh));
}

export async function render(container, { guard }) {
  const refresh = () => render(container, { guard });
  const [ra, rs, rc] = await Promise.all([api.get('/api/admin/agents'),
    api.get('/api/admin/stores'), api.get('/api/admin/accounts')]);
  if (![ra, rs, rc].every(guard)) return;
  container.replaceChildren(h('h1', {}, '人员与门店'));
  for (const r of [ra, rs, rc]) {
    if (!r.ok) return container.append(h('p', { className: 'error' }, r.body.error));
  }
  agents = ra.body.agents;
  stores = rs.body.stores;
  accounts = rc.body.accounts;
  container.append(agentsSection(refresh), storesSection(refresh), accountsSection(refresh));
}

// For the reassignment page: the clinic's agents.
export async function loadAgents() {
  const r = await api.get('/api/admin/agents');
  if (r.ok) agents = r.body.agents;
  return r;
}
