// The fan panel beside the chat (GET/POST …/fan, …/owner, …/bind-patient, …/unbind-patient):
// remark and tags for everyone, consultant and exclusive agent for front desk and admins, the
// patients bound to the fan. Every answer is the panel read afresh; the list entry follows it.
import * as api from './api.js';
import * as agents from './agents.js';
import * as convs from './conversations.js';

const $ = (id) => document.getElementById(id);
let ctx = null;      // {me, onAuth(r) → bool}
let shown = null;    // {key, account_id, openid}

const canSetOwners = () => ['front_desk', 'admin'].includes(ctx.me().role);

export function init(context) {
  ctx = context;
  $('fan-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const tags = f.tags.value.split(/[,，\s]+/).filter(Boolean);
    change('fan', { remark: f.remark.value.trim() || null, tags });
  });
  $('owner-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const id = (v) => (v === '' ? null : Number(v));
    change('owner', { consultant: id(f.consultant.value), exclusive: id(f.exclusive.value) });
  });
  $('bind-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = { name: f.pname.value.trim() };
    if (f.phone.value.trim()) body.phone = f.phone.value.trim();
    if (f.record_no.value.trim()) body.record_no = f.record_no.value.trim();
    if (await change('bind-patient', body)) f.reset();
  });
}

export async function show(c) {
  shown = { key: c.key, account_id: c.account_id, openid: c.openid };
  $('fan-panel').hidden = false;
  $('fan-error').textContent = '';
  const r = await api.fan(c.account_id, c.openid);
  if (!ctx.onAuth(r) && shown?.key === c.key) answered(r);
}

export function hide() {
  shown = null;
  $('fan-panel').hidden = true;
}

// A `fan` or `owner` push: read the panel again when it is the one shown.
export function onPush(msg) {
  if ((msg.type === 'fan' || msg.type === 'owner') && shown &&
      convs.keyOf(msg.account_id, msg.openid) === shown.key) {
    show(shown);
  }
}

async function change(action, body) {
  if (!shown) return false;
  const r = await api.conversationAction(shown.account_id, shown.openid, action, body);
  if (ctx.onAuth(r)) return false;
  answered(r);
  return r.ok;
}

function answered(r) {
  if (!r.ok) {
    $('fan-error').textContent = r.body.error || `操作失败（${r.status}）`;
    return;
  }
  $('fan-error').textContent = '';
  const f = r.body;
  convs.patch(shown.key, { display_name: f.display_name, remark: f.remark, tags: f.tags,
    consultant: f.consultant, exclusive: f.exclusive, patient_name: f.patients?.[0]?.name ?? null });
  render(f);
}

const who = (a) => (a ? a.name ?? `客服 ${a.id}` : '无');

function render(f) {
  $('fan-name').textContent = f.display_name;
  $('fan-openid').textContent = f.openid;
  const facts = [f.subscribed ? '已关注' : '已取消关注'];
  if (f.store_id != null) facts.push(`门店：${agents.storeName(f.store_id)}`);
  facts.push(`首次互动：${new Date(f.first_seen_at).toLocaleDateString('zh-CN')}`);
  $('fan-facts').textContent = facts.join(' · ');

  const form = $('fan-form');
  form.remark.value = f.remark ?? '';
  form.tags.value = (f.tags || []).join('，');

  $('fan-owners').textContent = `顾问：${who(f.consultant)}　专属客服：${who(f.exclusive)}`;
  const owners = $('owner-form');
  owners.hidden = !canSetOwners();
  if (canSetOwners()) {
    const items = agents.all().map((a) => ({ value: a.id, label: a.name }));
    agents.fillSelect(owners.consultant, items, '（无顾问）');
    agents.fillSelect(owners.exclusive, items.filter((i) =>
      agents.all().find((a) => a.id === i.value)?.can_receive), '（无专属客服）');
    owners.consultant.value = f.consultant ? String(f.consultant.id) : '';
    owners.exclusive.value = f.exclusive ? String(f.exclusive.id) : '';
  }

  const ul = $('patients');
  ul.replaceChildren(...(f.patients || []).map((p) => {
    const li = document.createElement('li');
    li.dataset.testid = 'patient';
    li.textContent = [p.name, p.phone, p.record_no && `病历号 ${p.record_no}`].filter(Boolean).join(' · ');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link';
    b.textContent = '解绑';
    b.addEventListener('click', () => {
      if (confirm(`确定解除与患者「${p.name}」的绑定？`)) change('unbind-patient', { patient_id: p.id });
    });
    li.append(' ', b);
    return li;
  }));
  $('patients-empty').hidden = (f.patients || []).length > 0;
}
