// Template notifications and their send log, API keys and the clinic's quick-reply groups
// (docs/api.md "Administration": /api/admin/templates, /api/admin/template-log,
// /api/admin/api-keys, /api/admin/snippet-groups). The
// server validates; its errors are shown next to the form and nothing is changed then. A new API
// key is shown once in the page and kept nowhere else.
import * as api from './api.js';
import { h, section, labelled, say, showError, when } from './dom.js';

// ---- Template notifications ----

function keywordRow(k = { keyword: '', value: '' }) {
  const keyword = h('input', { value: k.keyword, className: 'short', placeholder: 'thing1',
    testid: 'keyword-name', 'aria-label': '模板关键词' });
  const value = h('input', { value: k.value, className: 'wide', placeholder: '{{doctor}} {{store}}',
    testid: 'keyword-value', 'aria-label': '填入内容' });
  const row = h('div', { className: 'keyword-row', testid: 'keyword-row' }, keyword, '→', value,
    h('button', { type: 'button', className: 'link', onclick: () => row.remove() }, '删除'));
  row.read = () => ({ keyword: keyword.value.trim(), value: value.value });
  return row;
}

function stateTag(t) {
  if (!t.configured) return h('span', { className: 'tag', testid: 'template-state' }, '未设置');
  return h('span', { className: `tag ${t.enabled ? 'good' : ''}`, testid: 'template-state' },
    t.enabled ? '已启用' : '已停用');
}

function templateForm(t, builtin) {
  const summaryTag = h('span', {}, stateTag(t));
  const templateId = h('input', { value: t.template_id || '', className: 'wide', testid: 'template-id' });
  const keywords = h('div', { testid: 'keywords' });
  const addKeyword = (k) => keywords.append(keywordRow(k));
  t.keywords.forEach(addKeyword);
  const linkKind = h('select', { testid: 'link-kind' },
    h('option', { value: '', selected: !t.url && !t.miniprogram }, '无链接'),
    h('option', { value: 'url', selected: !!t.url }, '网页链接'),
    h('option', { value: 'mp', selected: !!t.miniprogram }, '小程序页面'));
  const url = h('input', { value: t.url || '', className: 'wide', placeholder: 'https://…/{{appointment_id}}',
    testid: 'template-url' });
  const mpAppid = h('input', { value: t.miniprogram ? t.miniprogram.appid : '', placeholder: 'wx…',
    testid: 'template-mp-appid' });
  const mpPage = h('input', { value: t.miniprogram ? t.miniprogram.page : '', placeholder: 'pages/…',
    className: 'wide', testid: 'template-mp-page' });
  const urlField = labelled('网页链接', url, '可含 {{字段}}');
  const mpFields = h('span', {}, labelled('小程序 AppID', mpAppid), labelled('小程序页面路径', mpPage));
  const showLink = () => {
    urlField.hidden = linkKind.value !== 'url';
    mpFields.hidden = linkKind.value !== 'mp';
  };
  linkKind.addEventListener('change', showLink);
  showLink();
  const enabled = h('input', { type: 'checkbox', checked: t.configured ? t.enabled : true,
    testid: 'template-enabled' });
  const status = h('div', { className: 'status', testid: 'template-status', role: 'status' });
  const fieldList = (list) => list.map((f) => h('li', {}, h('code', {}, `{{${f.name}}}`),
    ` ${f.label}${f.required ? '（必有）' : ''}`));

  const form = h('form', { testid: 'template-form' },
    labelled('模板 ID', templateId, '微信公众平台「模板消息」中的模板 ID'),
    h('h4', {}, '关键词映射（模板关键词 → 填入内容）'),
    h('p', { className: 'muted' }, '微信自2023年5月起不再显示 first 和 remark，请映射到模板的类目关键词（如 thing1、time2）。'),
    keywords,
    h('button', { type: 'button', testid: 'keyword-add', onclick: () => addKeyword() }, '添加关键词'),
    h('h4', {}, '点击消息打开'), labelled('链接类型', linkKind), urlField, mpFields,
    h('label', { className: 'switch' }, enabled, '启用此通知'),
    h('details', {}, h('summary', {}, '可用字段'),
      h('ul', { className: 'fields' }, fieldList(t.fields), fieldList(builtin))),
    h('div', { className: 'actions' }, h('button', { type: 'submit', testid: 'template-save' }, '保存'), status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {
      template_id: templateId.value.trim(),
      keywords: [...keywords.children].map((row) => row.read()),
      url: linkKind.value === 'url' ? url.value.trim() : null,
      miniprogram: linkKind.value === 'mp' ? { appid: mpAppid.value.trim(), page: mpPage.value.trim() } : null,
      enabled: enabled.checked,
    };
    say(status, '正在保存…', 'muted');
    const r = await api.put(`/api/admin/templates/${encodeURIComponent(t.kind)}`, body);
    if (!r.ok) return showError(status, r);
    Object.assign(t, r.body.template);
    summaryTag.replaceChildren(stateTag(t));
    say(status, Object.keys(r.body.changed).length ? '已保存，下一条此类通知即按新设置发送' : '已保存：设置没有变化');
  });
  return h('details', { className: 'template', testid: 'template', dataset: { kind: t.kind } },
    h('summary', { testid: 'template-summary' }, t.label, h('small', { className: 'muted' }, `（${t.kind}）`), summaryTag,
      t.template_id ? h('small', { className: 'muted' }, `　${t.template_id}`) : null),
    form);
}

function templatesSection(body) {
  return section('模板通知', 'templates',
    h('p', { className: 'muted' }, '诊所系统上报事件后，按此处的设置给顾客发送微信模板消息。未设置的通知类型不会发送（发送记录中记为跳过）。'),
    body.templates.map((t) => templateForm(t, body.builtin_fields || [])));
}

// ---- API keys ----

function apiKeysSection(keys, reload) {
  const status = h('div', { className: 'status', testid: 'api-key-status' });
  const revoke = async (k) => {
    if (!confirm(`确定停用密钥「${k.name}」吗？停用后使用它的系统将立即无法调用接口，且不能恢复。`)) return;
    const r = await api.post(`/api/admin/api-keys/${encodeURIComponent(k.name)}/revoke`);
    if (!r.ok) return showError(status, r);
    reload('api-keys');
  };
  const rows = keys.map((k) => h('tr', { testid: 'api-key-row', dataset: { name: k.name } },
    h('td', {}, k.name), h('td', {}, h('code', { testid: 'api-key-prefix' }, `${k.prefix}…`)),
    h('td', {}, when(k.created_at)),
    h('td', { testid: 'api-key-state' }, k.active ? '有效'
      : h('span', { className: 'tag' }, `已停用 ${when(k.revoked_at)}`)),
    h('td', {}, k.active ? h('button', { type: 'button', className: 'link danger', testid: 'api-key-revoke',
      onclick: () => revoke(k) }, '停用') : null)));
  return section('接口密钥', 'api-keys',
    h('p', { className: 'muted' }, '诊所自己的系统（如 PMS）调用集成接口时使用，放在请求头 Authorization: Bearer <密钥> 中。服务器只保存密钥的摘要。'),
    keys.length ? h('table', { className: 'grid' },
      h('thead', {}, h('tr', {}, ['名称', '前缀', '创建时间', '状态', '操作'].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows)) : h('p', { className: 'muted' }, '还没有接口密钥。'),
    status);
}

// The form and the new key's box stay when the list is reloaded; the key lives only in this box.
function newKeyForm(reload) {
  const name = h('input', { testid: 'new-api-key-name', required: true, maxlength: 64, placeholder: 'PMS 系统' });
  const status = h('div', { className: 'status', testid: 'new-api-key-status' });
  const shown = h('div', { testid: 'new-api-key-box' });
  const form = h('form', { className: 'inline-form', testid: 'new-api-key' }, labelled('密钥名称', name),
    h('button', { type: 'submit' }, '创建密钥'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    shown.replaceChildren();
    const r = await api.post('/api/admin/api-keys', { name: name.value.trim() });
    if (!r.ok) return showError(status, r);
    say(status, `已创建「${r.body.api_key.name}」`);
    name.value = '';
    shown.replaceChildren(h('div', { className: 'notice' },
      h('strong', {}, '只显示一次，请立即保存：'), '关闭或刷新此页面后将无法再次查看此密钥。',
      h('pre', { testid: 'new-api-key' }, r.body.key),
      h('button', { type: 'button', onclick: () => shown.replaceChildren() }, '我已保存')));
    reload('api-keys');
  });
  return h('div', { className: 'card' }, h('h3', {}, '创建接口密钥'), form, shown);
}

// ---- The clinic's quick-reply groups ----

function snippetRow(s, status, reload) {
  const text = h('textarea', { rows: 2, maxlength: 1000, testid: 'snippet-text' });
  text.value = s.text;
  const save = async () => {
    const r = await api.put(`/api/admin/snippets/${s.id}`, { text: text.value });
    if (!r.ok) return showError(status, r);
    say(status, Object.keys(r.body.changed).length ? '快捷回复已保存' : '没有变化');
  };
  const remove = async () => {
    if (!confirm('确定删除这条快捷回复吗？')) return;
    const r = await api.del(`/api/admin/snippets/${s.id}`);
    if (!r.ok) return showError(status, r);
    reload('snippets', '快捷回复已删除');
  };
  return h('li', { testid: 'snippet' }, text,
    h('button', { type: 'button', testid: 'snippet-save', onclick: save }, '保存'),
    h('button', { type: 'button', className: 'link danger', testid: 'snippet-delete', onclick: remove }, '删除'));
}

function groupBox(g, reload) {
  const status = h('div', { className: 'status', testid: 'snippet-group-status' });
  const name = h('input', { value: g.name, maxlength: 64, testid: 'snippet-group-name' });
  const rename = async () => {
    const r = await api.put(`/api/admin/snippet-groups/${g.id}`, { name: name.value.trim() });
    if (!r.ok) return showError(status, r);
    say(status, Object.keys(r.body.changed).length ? '已改名' : '没有变化');
  };
  const remove = async () => {
    if (!confirm(`确定删除分组「${g.name}」及其中的 ${g.snippets.length} 条快捷回复吗？`)) return;
    const r = await api.del(`/api/admin/snippet-groups/${g.id}`);
    if (!r.ok) return showError(status, r);
    reload('snippets', `分组「${g.name}」已删除`);
  };
  const text = h('textarea', { rows: 2, maxlength: 1000, testid: 'new-snippet-text', placeholder: '新的快捷回复内容' });
  const add = async () => {
    const r = await api.post(`/api/admin/snippet-groups/${g.id}/snippets`, { text: text.value });
    if (!r.ok) return showError(status, r);
    reload('snippets', '快捷回复已添加');
  };
  return h('div', { className: 'snippet-group', testid: 'snippet-group', dataset: { name: g.name } },
    h('div', { className: 'inline-form' }, labelled('分组名称', name),
      h('button', { type: 'button', testid: 'snippet-group-rename', onclick: rename }, '改名'),
      h('button', { type: 'button', className: 'link danger', testid: 'snippet-group-delete', onclick: remove },
        '删除分组')),
    g.snippets.length ? h('ol', { className: 'snippets' }, g.snippets.map((s) => snippetRow(s, status, reload)))
      : h('p', { className: 'muted' }, '此分组还没有快捷回复。'),
    text, h('button', { type: 'button', testid: 'new-snippet-add', onclick: add }, '添加快捷回复'), status);
}

function snippetsSection(body, reload, message) {
  const name = h('input', { testid: 'new-snippet-group-name', required: true, maxlength: 64 });
  const status = h('div', { className: 'status', testid: 'snippets-status' });
  if (message) say(status, message);
  const form = h('form', { className: 'inline-form', testid: 'new-snippet-group' },
    labelled('新分组名称', name), h('button', { type: 'submit' }, '添加分组'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await api.post('/api/admin/snippet-groups', { name: name.value.trim() });
    if (!r.ok) return showError(status, r);
    reload('snippets', `分组「${r.body.group.name}」已添加`);
  });
  const { limits } = body;
  return section('快捷回复分组', 'snippet-groups',
    h('p', { className: 'muted' }, `全诊所客服在工作台中可用的快捷回复（每位客服另有自己的个人快捷回复）。`
      + `最多 ${limits.groups} 个分组，每组最多 ${limits.snippets_per_group} 条，每条最多 ${limits.text_chars} 个字符。`),
    body.groups.map((g) => groupBox(g, reload)),
    body.groups.length ? null : h('p', { className: 'muted' }, '还没有快捷回复分组。'),
    form, status);
}

// ---- The send log (GET /api/admin/template-log) ----

const sendStates = {
  queued: '待发送', sent: '已发送', failed: '发送失败', uncertain: '未知（需人工确认）',
  delivered: '已送达', refused: '用户拒收', skipped: '未发送（已关闭）', no_recipient: '无可通知的微信用户',
};

// A datetime-local value ("2026-12-02T10:00", the browser's time) as RFC 3339, or undefined.
const instant = (v) => (v ? new Date(v).toISOString() : undefined);

function sendLogSection(kinds) {
  const patient = h('input', { testid: 'log-patient', placeholder: '姓名的一部分' });
  const openid = h('input', { testid: 'log-openid', placeholder: 'o…' });
  const kind = h('select', { testid: 'log-kind' }, h('option', { value: '' }, '全部'),
    kinds.map((k) => h('option', { value: k.kind }, k.label)));
  const from = h('input', { type: 'datetime-local', testid: 'log-from' });
  const to = h('input', { type: 'datetime-local', testid: 'log-to' });
  const rows = h('tbody', { testid: 'log-rows' });
  const pager = h('div', { className: 'pager' });
  const status = h('div', { className: 'status', role: 'status', testid: 'log-status' });
  const load = async (page) => {
    const r = await api.get(`/api/admin/template-log${api.query({
      patient: patient.value.trim(), openid: openid.value.trim(), kind: kind.value,
      from: instant(from.value), to: instant(to.value), page, page_size: 20,
    })}`);
    if (!r.ok) return showError(status, r);
    say(status, r.body.total ? `共 ${r.body.total} 条` : '没有符合条件的记录');
    rows.replaceChildren(...r.body.entries.map((e) => h('tr', { testid: 'log-entry' },
      h('td', {}, when(e.created_at)), h('td', {}, e.kind_label), h('td', {}, e.patient_name || ''),
      h('td', {}, h('code', {}, e.openid || '')),
      h('td', { testid: 'log-state' }, sendStates[e.state] || e.state),
      h('td', {}, [e.errcode != null ? `错误码 ${e.errcode} ` : '', e.reason || '', e.delivery_status || ''].join(' ').trim()))));
    const pages = Math.max(1, Math.ceil(r.body.total / r.body.page_size));
    pager.replaceChildren(
      h('button', { type: 'button', disabled: r.body.page <= 1, onclick: () => load(r.body.page - 1) }, '上一页'),
      ` 第 ${r.body.page} / ${pages} 页 `,
      h('button', { type: 'button', disabled: r.body.page >= pages, onclick: () => load(r.body.page + 1) }, '下一页'));
  };
  const form = h('form', { className: 'inline-form', testid: 'log-form' },
    labelled('患者', patient), labelled('微信用户（openid）', openid), labelled('通知类型', kind),
    labelled('从', from), labelled('到', to), h('button', { type: 'submit' }, '查询'), status);
  form.addEventListener('submit', (e) => { e.preventDefault(); load(1); });
  load(1);
  return section('模板通知发送记录', 'template-log',
    h('p', { className: 'muted' }, '诊所系统请求发送的每条模板通知及其状态（送达情况由微信稍后回报）。'),
    form, h('table', { className: 'grid' },
      h('thead', {}, h('tr', {}, ['时间', '类型', '患者', '微信用户', '状态', '说明'].map((t) => h('th', {}, t)))),
      rows), pager);
}

// ---- The page ----

const parts = {
  templates: { path: '/api/admin/templates', build: (body) => templatesSection(body) },
  'template-log': { path: '/api/admin/templates', build: (body) => sendLogSection(body.templates) },
  'api-keys': { path: '/api/admin/api-keys', build: (body, reload) => apiKeysSection(body.api_keys, reload) },
  snippets: { path: '/api/admin/snippet-groups', build: snippetsSection },
};

export async function render(container, { guard }) {
  const slots = Object.fromEntries(Object.keys(parts).map((k) => [k, h('div', { dataset: { part: k } })]));
  // Reload one part from the server (after a change) and put it in place of the old one.
  const reload = async (key, message) => {
    const r = await api.get(parts[key].path);
    if (!guard(r)) return;
    slots[key].replaceChildren(r.ok ? parts[key].build(r.body, reload, message)
      : section('', key, h('p', { className: 'error' }, r.body.error)));
  };
  container.replaceChildren(h('h1', {}, '模板、接口密钥与快捷回复'), slots.templates,
    slots['template-log'], slots['api-keys'], newKeyForm(reload), slots.snippets);
  await Promise.all(Object.keys(parts).map((k) => reload(k)));
}
