// Owner reassignment (POST /api/admin/reassign/preview and /apply): choose the source agents and
// the owner role, the receivers (or none) and the distribution, look at the preview, then apply
// exactly that plan (the server refuses it when fans changed since).
import * as api from './api.js';
import { h, section, labelled, say, showError, roleLabels } from './dom.js';

function agentChecks(agents, testid) {
  const boxes = agents.map((a) => h('label', { className: 'chip' },
    h('input', { type: 'checkbox', value: String(a.id) }),
    `${a.name}（${roleLabels[a.role]}${a.active ? '' : '，已停用'}）`));
  const box = h('div', { className: 'picker', testid }, boxes);
  box.read = () => boxes.map((l) => l.querySelector('input')).filter((i) => i.checked)
    .map((i) => Number(i.value));
  return box;
}

export async function render(container, { guard }) {
  const r = await api.get('/api/admin/agents');
  if (!guard(r)) return;
  if (!r.ok) return container.append(h('p', { className: 'error' }, r.body.error));
  const agents = r.body.agents;
  const name = (id) => (agents.find((a) => a.id === id) || { name: `编号 ${id}` }).name;

  const role = h('select', { testid: 'reassign-role' },
    h('option', { value: 'consultant' }, '顾问'), h('option', { value: 'exclusive' }, '专属客服'));
  const from = agentChecks(agents, 'reassign-from');
  const to = agentChecks(agents.filter((a) => a.active), 'reassign-to');
  const distribution = h('select', { testid: 'reassign-distribution' },
    h('option', { value: 'round_robin' }, '轮流分配（按顾客先后依次分给每位接收人）'),
    h('option', { value: 'average' }, '平均随机分配（随机且尽量平均）'));
  const status = h('div', { className: 'status', testid: 'reassign-status' });
  const preview = h('div', { testid: 'reassign-preview' });
  let plan = null;
  let planBody = null;

  const body = () => {
    const b = { role: role.value, from_agents: from.read(), to_agents: to.read() };
    if (b.to_agents.length) b.distribution = distribution.value;
    return b;
  };
  const showPreview = (p) => {
    preview.replaceChildren(
      h('p', { testid: 'reassign-summary' }, `共 ${p.total} 位顾客，其中 ${p.changes} 位的${role.selectedOptions[0].textContent}将更换。`),
      p.receivers.length ? h('ul', {}, p.receivers.map((x) => h('li', {}, `${x.name}：${x.fans} 位`)))
        : h('p', { className: 'muted' }, '未选择接收人：这些顾客将不再有此归属。'),
      h('details', {}, h('summary', {}, '顾客明细'), h('table', { className: 'grid' },
        h('thead', {}, h('tr', {}, ['公众号', 'OpenID', '原归属', '新归属'].map((t) => h('th', {}, t)))),
        h('tbody', {}, p.fans.map((f) => h('tr', {}, h('td', {}, String(f.account_id)), h('td', {}, f.openid),
          h('td', {}, name(f.from)), h('td', {}, f.to == null ? '（无）' : name(f.to))))))));
  };
  const previewButton = h('button', { type: 'button', testid: 'reassign-preview-button', onclick: async () => {
    planBody = body();
    const p = await api.post('/api/admin/reassign/preview', planBody);
    if (!guard(p)) return;
    if (!p.ok) {
      plan = null;
      apply.disabled = true;
      preview.replaceChildren();
      return showError(status, p);
    }
    plan = p.body.plan;
    apply.disabled = p.body.changes === 0;
    say(status, '请核对预览，确认后点击“确认更换”。', 'muted');
    showPreview(p.body);
  } }, '预览');
  const apply = h('button', { type: 'button', testid: 'reassign-apply', disabled: true, onclick: async () => {
    const a = await api.post('/api/admin/reassign/apply', { ...planBody, plan });
    if (!guard(a)) return;
    apply.disabled = true;
    if (!a.ok) return showError(status, a);
    say(status, `已更换 ${a.body.applied} 位顾客的归属。`);
  } }, '确认更换');
  // Any change of the choices invalidates the preview.
  for (const el of [role, from, to, distribution]) {
    el.addEventListener('change', () => { apply.disabled = true; plan = null; });
  }

  container.append(h('h1', {}, '批量更换归属'), section('选择', 'reassign-form',
    labelled('更换哪种归属', role),
    h('h3', {}, '原归属客服'), from,
    h('h3', {}, '接收顾客的客服（不选：清除归属）'), to,
    labelled('分配方式', distribution),
    h('div', { className: 'actions' }, previewButton, apply), status),
  section('预览', 'reassign-preview-section', preview));
}
