// Evaluations (docs/api.md "Evaluations"): the list filtered by state and rating with replies to
// comments, the per-attribute statistics as an inline SVG bar chart, the CSV and .xlsx exports of
// the current filter, and the editor of the clinic's own attributes.
import * as api from './api.js';
import { h, section, labelled, say, showError, ratingLabels, stateLabels, when } from './dom.js';

const svgNs = 'http://www.w3.org/2000/svg';
const colors = { good: '#2e9d5b', average: '#e0a526', poor: '#d9534f' };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// One horizontal stacked bar per attribute: good, average, poor counts side by side.
export function chart(attributes) {
  const rowH = 30;
  const labelW = 110;
  const barW = 420;
  const height = attributes.length * rowH + 30;
  const root = svg('svg', { viewBox: `0 0 ${labelW + barW + 60} ${height}`, width: '100%',
    role: 'img', 'aria-label': '各评价项目的好评、中评、差评数量', 'data-testid': 'stats-chart' });
  const max = Math.max(1, ...attributes.map((a) => a.good + a.average + a.poor));
  attributes.forEach((a, i) => {
    const y = i * rowH + 4;
    const g = svg('g', { 'data-testid': 'stats-bar', 'data-attribute': a.name });
    g.append(svg('text', { x: labelW - 8, y: y + 16, 'text-anchor': 'end', 'font-size': 13 }, a.name));
    let x = labelW;
    for (const k of ['good', 'average', 'poor']) {
      const w = (a[k] / max) * barW;
      if (a[k] > 0) {
        const rect = svg('rect', { x, y, width: Math.max(w, 1), height: rowH - 10, fill: colors[k],
          'data-rating': k, 'data-count': a[k] });
        rect.append(svg('title', {}, `${a.name}：${ratingLabels[k]} ${a[k]}`));
        g.append(rect);
        if (w >= 18) {
          g.append(svg('text', { x: x + w / 2, y: y + 15, 'text-anchor': 'middle', 'font-size': 11,
            fill: '#fff' }, String(a[k])));
        }
      }
      x += w;
    }
    g.append(svg('text', { x: x + 6, y: y + 15, 'font-size': 11, fill: '#666' },
      `${a.good}/${a.average}/${a.poor}`));
    root.append(g);
  });
  const ly = attributes.length * rowH + 12;
  ['good', 'average', 'poor'].forEach((k, i) => {
    root.append(svg('rect', { x: labelW + i * 80, y: ly, width: 12, height: 12, fill: colors[k] }));
    root.append(svg('text', { x: labelW + i * 80 + 16, y: ly + 11, 'font-size': 12 }, `${ratingLabels[k]}评`));
  });
  return root;
}

function evaluationCard(e, reload) {
  const ratings = h('ul', { className: 'ratings' }, e.attributes.map((name) => {
    const r = e.ratings[name];
    return h('li', { className: r || 'none' }, `${name}：${r ? ratingLabels[r] : '—'}`);
  }));
  const card = h('article', { className: 'evaluation', testid: 'evaluation', dataset: { id: String(e.id) } },
    h('header', {}, h('strong', {}, `#${e.id}`), '　',
      h('span', { className: `tag ${e.rating || ''}`, testid: 'evaluation-state' }, stateLabels[e.state]),
      e.rating ? h('span', { className: `tag ${e.rating}` }, `${ratingLabels[e.rating]}评`) : null,
      '　', e.patient || `顾客 …${e.openid.slice(-6)}`, '　',
      h('small', { className: 'muted' }, `就诊 ${e.visit_ref} · 邀请于 ${when(e.created_at)}`,
        e.submitted_at ? ` · 提交于 ${when(e.submitted_at)}` : '')),
    e.state === 'awaiting' ? h('p', { className: 'muted' }, '顾客尚未评价') : ratings,
    e.comment ? h('blockquote', { testid: 'evaluation-comment' }, e.comment) : null);
  if (e.reply) {
    card.append(h('div', { className: 'reply', testid: 'evaluation-reply' }, `诊所回复：${e.reply}`,
      h('small', { className: 'muted' }, `　${when(e.replied_at)}`)));
  } else if (e.state === 'submitted') {
    const text = h('textarea', { rows: 2, maxlength: 600, testid: 'reply-text', placeholder: '回复顾客的留言' });
    const status = h('div', { className: 'status' });
    const form = h('form', { className: 'reply-form' }, text,
      h('button', { type: 'submit', testid: 'reply-send' }, '回复'), status);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await api.post(`/api/admin/evaluations/${e.id}/reply`, { text: text.value });
      if (!r.ok) return showError(status, r);
      say(status, r.body.delivery === 'sent' ? '已回复，并已通过公众号发给顾客'
        : '已回复；顾客近 48 小时未互动，回复将在评价页面显示');
      setTimeout(reload, 1200);
    });
    card.append(form);
  }
  return card;
}

function attributesSection(data) {
  const list = h('div', { testid: 'attributes-custom' });
  const addRow = (value) => {
    const input = h('input', { value, maxlength: 64, testid: 'attribute-name' });
    const row = h('div', { className: 'date-row' }, input,
      h('button', { type: 'button', className: 'link', onclick: () => row.remove() }, '删除'));
    row.read = () => input.value;
    list.append(row);
  };
  data.custom.forEach(addRow);
  const status = h('div', { className: 'status', testid: 'attributes-status' });
  const form = h('form', {},
    h('p', {}, `默认项目：${data.default.join('、')}（不可修改）`),
    h('p', { className: 'muted' }, `诊所自定义项目（最多 ${data.max_custom} 个，每个不超过 ${data.max_length} 个字）。修改只影响之后发出的评价邀请。`),
    list,
    h('button', { type: 'button', testid: 'attribute-add', onclick: () => addRow('') }, '添加项目'),
    h('div', { className: 'actions' }, h('button', { type: 'submit', testid: 'attributes-save' }, '保存评价项目'), status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const custom = [...list.children].map((row) => row.read());
    const r = await api.put('/api/admin/evaluation-attributes', { custom });
    if (!r.ok) return showError(status, r);
    say(status, r.body.changed ? '已保存' : '没有变化');
  });
  return section('评价项目', 'attributes', form);
}

export async function render(container, { guard }) {
  const params = new URLSearchParams(sessionStorage.getItem('evaluation-filter') || '');
  const filter = { state: params.get('state') || '', rating: params.get('rating') || '', page: 1 };
  const state = h('select', { testid: 'filter-state' }, h('option', { value: '' }, '全部状态'),
    Object.entries(stateLabels).map(([v, l]) => h('option', { value: v, selected: v === filter.state }, l)));
  const rating = h('select', { testid: 'filter-rating' }, h('option', { value: '' }, '全部评价'),
    Object.entries(ratingLabels).map(([v, l]) => h('option', { value: v, selected: v === filter.rating }, `${l}评`)));
  const csv = h('a', { testid: 'export-csv', download: '' }, '导出 CSV');
  const xlsx = h('a', { testid: 'export-xlsx', download: '' }, '导出 Excel（.xlsx）');
  const list = h('div', { testid: 'evaluation-list' });
  const pager = h('div', { className: 'pager' });
  const listStatus = h('div', { className: 'status' });
  const chartBox = h('div', { testid: 'stats' });

  const loadStats = async () => {
    const r = await api.get('/api/admin/evaluations/stats');
    if (!r.ok) return chartBox.replaceChildren(h('p', { className: 'error' }, r.body.error));
    chartBox.replaceChildren(chart(r.body.attributes));
  };
  const loadList = async () => {
    const q = api.query({ state: filter.state, rating: filter.rating });
    csv.href = `/api/admin/evaluations/export.csv${q}`;
    xlsx.href = `/api/admin/evaluations/export.xlsx${q}`;
    const r = await api.get(`/api/admin/evaluations${api.query({ ...filter, page_size: 20 })}`);
    if (!guard(r)) return;
    if (!r.ok) return showError(listStatus, r);
    say(listStatus, `共 ${r.body.total} 条`, 'muted');
    list.replaceChildren(...r.body.evaluations.map((e) => evaluationCard(e, reload)));
    if (!r.body.evaluations.length) list.append(h('p', { className: 'muted' }, '没有符合条件的评价'));
    const pages = Math.max(1, Math.ceil(r.body.total / r.body.page_size));
    pager.replaceChildren(
      h('button', { type: 'button', disabled: filter.page <= 1, onclick: () => { filter.page -= 1; loadList(); } }, '上一页'),
      ` 第 ${filter.page} / ${pages} 页 `,
      h('button', { type: 'button', disabled: filter.page >= pages, onclick: () => { filter.page += 1; loadList(); } }, '下一页'));
  };
  const reload = () => Promise.all([loadList(), loadStats()]);
  for (const [el, key] of [[state, 'state'], [rating, 'rating']]) {
    el.addEventListener('change', () => {
      filter[key] = el.value;
      filter.page = 1;
      sessionStorage.setItem('evaluation-filter', api.query({ state: filter.state, rating: filter.rating }).slice(1));
      loadList();
    });
  }
  container.append(h('h1', {}, '服务评价'),
    section('统计', 'evaluation-stats', chartBox),
    section('评价列表', 'evaluations',
      h('div', { className: 'inline-form' }, labelled('状态', state), labelled('评价', rating),
        h('button', { type: 'button', testid: 'evaluations-refresh', onclick: reload }, '刷新'),
        csv, xlsx),
      listStatus, list, pager));
  const ra = await api.get('/api/admin/evaluation-attributes');
  if (!guard(ra)) return;
  container.append(ra.ok ? attributesSection(ra.body) : h('p', { className: 'error' }, ra.body.error));
  await reload();
}
