// "Who would get this now?" (GET /api/admin/route-preview), the audit log browser
// (GET /api/admin/audit, paged by next_before) and data retention (GET|PUT /api/admin/retention).
import * as api from './api.js';
import { h, section, labelled, say, showError, when } from './dom.js';

const ruleLabels = {
  consultant: '顾问', session: '会话中的客服', exclusive: '专属客服',
  exclusive_offline_shared: '专属客服不在线，通知其他客服', assigned: '新分配专属客服',
  shared: '共享：通知所有可接待的客服', none: '无人可接待',
};
const replyLabels = {
  consultant_offline: '顾问不在线提示', after_hours: '非工作时间回复', no_agent: '无人接待回复',
};

function previewSection(accounts, agents) {
  const account = h('select', { testid: 'preview-account' },
    accounts.map((a) => h('option', { value: String(a.id) }, a.appid)));
  const openid = h('input', { testid: 'preview-openid', placeholder: '顾客 OpenID', required: true });
  const out = h('div', { testid: 'preview-result' });
  const status = h('div', { className: 'status' });
  const name = (id) => (agents.find((a) => String(a.id) === String(id)) || { name: `客服 ${id}` }).name;
  const form = h('form', { className: 'inline-form' }, labelled('公众号', account),
    labelled('顾客', openid), h('button', { type: 'submit' }, '现在谁会收到？'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await api.get(`/api/admin/route-preview${api.query({ account: account.value, openid: openid.value.trim() })}`);
    out.replaceChildren();
    if (!r.ok) return showError(status, r);
    say(status, '');
    const d = r.body.decision;
    out.replaceChildren(h('div', {},
      h('p', {}, `规则：${ruleLabels[d.rule] || d.rule}`),
      h('p', { testid: 'preview-targets' }, `通知：${d.targets.length ? d.targets.map(name).join('、') : '（无人）'}`),
      d.owner ? h('p', {}, `归属：${name(d.owner)}`) : null,
      d.auto_reply ? h('p', {}, `自动回复：${replyLabels[d.auto_reply]}——${r.body.auto_reply_text || ''}`) : null,
      r.body.fan_known ? null : h('p', { className: 'muted' }, '该顾客尚未发过消息，按新顾客预览。'),
      h('details', {}, h('summary', {}, '详细依据'), h('pre', {}, JSON.stringify(d.receipt || {}, null, 2)))));
  });
  return section('现在谁会收到这条消息？', 'route-preview',
    h('p', { className: 'muted' }, '按当前的设置、在线状态和会话，预览顾客此刻发来一条文字消息会分配给谁（不会真的分配）。'),
    form, out);
}

function auditSection() {
  const action = h('input', { testid: 'audit-action', placeholder: '如 routing.set 或 fan.' });
  const rows = h('tbody', { testid: 'audit-rows' });
  const more = h('button', { type: 'button', hidden: true }, '更早的记录');
  const status = h('div', { className: 'status' });
  let before = null;
  const load = async (reset) => {
    if (reset) { rows.replaceChildren(); before = null; }
    const r = await api.get(`/api/admin/audit${api.query({ action: action.value.trim(), before, limit: 50 })}`);
    if (!r.ok) return showError(status, r);
    say(status, '');
    for (const e of r.body.entries) {
      rows.append(h('tr', { testid: 'audit-entry' }, h('td', {}, when(e.at)),
        h('td', {}, e.agent ? e.agent.name : e.actor), h('td', {}, e.action), h('td', {}, e.subject),
        h('td', {}, h('code', {}, JSON.stringify(e.detail)))));
    }
    before = r.body.next_before;
    more.hidden = before == null;
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', { className: 'inline-form' }, labelled('操作', action),
    h('button', { type: 'submit' }, '查询'), status);
  form.addEventListener('submit', (e) => { e.preventDefault(); load(true); });
  load(true);
  return section('操作日志', 'audit', form, h('table', { className: 'grid' },
    h('thead', {}, h('tr', {}, ['时间', '操作人', '操作', '对象', '详情'].map((t) => h('th', {}, t)))),
    rows), more);
}

function retentionSection(current) {
  const forever = h('input', { type: 'checkbox', checked: current == null, testid: 'retention-forever' });
  const days = h('input', { type: 'number', min: 1, max: 3650, value: current ?? 30, className: 'short',
    testid: 'retention-days' });
  const status = h('div', { className: 'status', testid: 'retention-status' });
  const form = h('form', { className: 'inline-form' },
    h('label', { className: 'switch' }, forever, '永久保留'),
    labelled('取消关注后保留天数', days, '1–3650 天'), h('button', { type: 'submit' }, '保存'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await api.put('/api/admin/retention',
      { message_retention_days: forever.checked ? null : Number(days.value) });
    if (!r.ok) return showError(status, r);
    say(status, Object.keys(r.body.changed).length ? '已保存' : '设置没有变化');
  });
  return section('数据保留', 'retention',
    h('p', { className: 'muted' }, '顾客取消关注超过保留期后，其消息、媒体文件和会话记录将被删除（操作日志保留）。'), form);
}

export async function render(container, { guard }) {
  const [ra, rg, rr] = await Promise.all([api.get('/api/admin/accounts'), api.get('/api/admin/agents'),
    api.get('/api/admin/retention')]);
  if (![ra, rg, rr].every(guard)) return;
  for (const r of [ra, rg, rr]) {
    if (!r.ok) return container.append(h('p', { className: 'error' }, r.body.error));
  }
  container.append(h('h1', {}, '分配预览与日志'), previewSection(ra.body.accounts, rg.body.agents),
    auditSection(), retentionSection(rr.body.message_retention_days));
}
