// The clinic's agents and stores (GET /api/agents): names for pickers (transfer, owners) and the
// "客服状态" dialog, online and offline agents by store.

import * as api from './api.js';

let data = { stores: [], agents: [] };

export async function load() {
  const r = await api.agents();
  if (r.ok) data = { stores: r.body.stores || [], agents: r.body.agents || [] };
  return r;
}

export const all = () => data.agents;

// A presence push ({"type":"presence","agent":{id,name},"online":…}): the agent's flag follows;
// false when the agent is not known here (reload the list then).
export function setOnline(id, online) {
  const a = data.agents.find((x) => x.id === id);
  if (a) a.online = Boolean(online);
  return Boolean(a);
}
export const stores = () => data.stores;
export const storeName = (id) => data.stores.find((s) => s.id === id)?.name ?? `门店 ${id}`;

// <option>s for a <select>: a first empty choice, then `items` as {value, label}. Unchanged
// options are left alone (replacing them would close an open drop-down).
export function fillSelect(select, items, empty) {
  const signature = JSON.stringify([empty, items]);
  if (select.dataset.signature === signature) return;
  select.dataset.signature = signature;
  const keep = select.value;
  const options = [];
  if (empty !== undefined) options.push(new Option(empty, ''));
  for (const { value, label } of items) options.push(new Option(label, String(value)));
  select.replaceChildren(...options);
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

// The dialog's body: one group per store (then agents without one), online first.
export function renderView(container) {
  const groups = new Map();
  for (const s of data.stores) groups.set(s.id, { title: s.name, agents: [] });
  groups.set(null, { title: '未分配门店', agents: [] });
  for (const a of data.agents) {
    (groups.get(a.store_id ?? null) ?? groups.get(null)).agents.push(a);
  }
  const sections = [];
  for (const { title, agents } of groups.values()) {
    if (agents.length === 0) continue;
    const online = agents.filter((a) => a.online).length;
    const h = document.createElement('h3');
    h.textContent = `${title}（在线 ${online} / ${agents.length}）`;
    const ul = document.createElement('ul');
    ul.className = 'agents';
    for (const a of [...agents].sort((x, y) => Number(y.online) - Number(x.online))) {
      const li = document.createElement('li');
      li.dataset.testid = 'agent';
      li.className = a.online ? 'online' : 'offline';
      li.textContent = `${a.name}（${a.online ? '在线' : '离线'}${a.can_receive ? '' : '，不接待咨询'}）`;
      ul.append(li);
    }
    sections.push(h, ul);
  }
  container.replaceChildren(...sections);
}
