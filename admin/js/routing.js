// Routing settings (GET|PUT /api/admin/routing): the modes, working hours (weekly windows with
// split shifts and overnight windows, closed dates, the UTC offset), each auto-reply's text and
// switch with the master switch, the suppression window and the timeout. The server validates;
// its errors are shown as they come, one line per problem.
import * as api from './api.js';
import { h, section, labelled, say, showError } from './dom.js';

const modes = [
  ['consultant_mode', '顾问模式', '顾客有顾问时，只通知顾问'],
  ['exclusive_mode', '专属客服模式', '关闭即为共享模式：通知所有在线客服'],
  ['chain_store_mode', '连锁门店模式', '绑定门店的顾客只分配给该门店的客服'],
];
const replies = [
  ['welcome', '关注欢迎语', '顾客关注公众号时'],
  ['consultant_offline', '顾问不在线提示', '顾问模式下顾客的顾问不在线时（不受总开关控制）'],
  ['after_hours', '非工作时间回复', '工作时间以外收到消息时'],
  ['no_agent', '无人接待回复', '没有在线客服可以接待时'],
  ['timeout', '超时回复', '客服在超时时间内未回复时'],
];
const weekdays = ['一', '二', '三', '四', '五', '六', '日'];
const numbers = [
  ['timeout_s', '超时时间（秒）', '1–86400：客服在此时间内未回复，发送超时回复', 1, 86400],
  ['suppression_window_s', '免打扰时间（秒）', '0–86400：此时间内每位顾客最多收到一条自动回复，客服回复后不再自动回复', 0, 86400],
  ['lock_ttl_s', '会话保持时间（秒）', '1–86400：无人发消息超过此时间，会话自动结束', 1, 86400],
];

function windowRow(w, onRemove) {
  const days = weekdays.map((d, i) => h('label', { className: 'day' },
    h('input', { type: 'checkbox', value: String(i + 1), checked: w.weekdays.includes(i + 1),
      testid: `weekday-${i + 1}` }), d));
  const start = h('input', { className: 'time', value: w.start, placeholder: '09:00',
    testid: 'window-start', 'aria-label': '开始时间' });
  const end = h('input', { className: 'time', value: w.end, placeholder: '18:00',
    testid: 'window-end', 'aria-label': '结束时间' });
  const note = h('small', { className: 'muted', testid: 'window-note' });
  const update = () => {
    note.textContent = end.value && start.value && end.value <= start.value
      ? `跨夜：至次日 ${end.value}` : '';
  };
  start.addEventListener('input', update);
  end.addEventListener('input', update);
  update();
  const row = h('div', { className: 'window', testid: 'work-window' },
    h('span', { className: 'days' }, '星期', days), start, '至', end, note,
    h('button', { type: 'button', className: 'link', testid: 'window-remove',
      onclick: () => { row.remove(); onRemove(); } }, '删除'));
  row.read = () => ({
    weekdays: days.map((l) => l.querySelector('input')).filter((i) => i.checked)
      .map((i) => Number(i.value)),
    start: start.value.trim(),
    end: end.value.trim(),
  });
  return row;
}

function dateRow(value) {
  const input = h('input', { type: 'date', value, testid: 'closed-date' });
  const row = h('div', { className: 'date-row' }, input,
    h('button', { type: 'button', className: 'link', onclick: () => row.remove() }, '删除'));
  row.read = () => input.value;
  return row;
}

const labels = {
  ...Object.fromEntries(modes.map(([key, title]) => [key, title])),
  ...Object.fromEntries(replies.flatMap(([kind, title]) =>
    [[`${kind}_enabled`, `${title}开关`], [`${kind}_text`, `${title}内容`]])),
  ...Object.fromEntries(numbers.map(([key, title]) => [key, title.replace(/（.*/, '')])),
  auto_reply_enabled: '自动回复总开关', utc_offset: '时区', work_hours: '工作时间', closed_dates: '休息日',
};

function describeChange(changed) {
  const names = Object.keys(changed).map((k) => labels[k] || k);
  return names.length ? `已保存：${names.join('、')}已更改。新设置在 10 秒内对新消息生效。`
    : '已保存：设置没有变化。';
}

export async function render(container, { guard }) {
  const r = await api.get('/api/admin/routing');
  if (!guard(r)) return;
  if (!r.ok) {
    container.append(h('p', { className: 'error' }, r.body.error));
    return;
  }
  const s = r.body.routing;
  const inputs = {};
  const check = (key) => {
    inputs[key] = h('input', { type: 'checkbox', checked: s[key], testid: key });
    return inputs[key];
  };

  const modeSection = section('分配模式', 'routing-modes', modes.map(([key, title, hint]) =>
    h('label', { className: 'switch' }, check(key), title, h('small', { className: 'muted' }, `　${hint}`))));

  const windows = h('div', { testid: 'work-windows' });
  const emptyNote = h('p', { className: 'muted', testid: 'always-open' }, '未设置工作时间：全天营业。');
  const refreshEmpty = () => { emptyNote.hidden = windows.children.length > 0; };
  const addWindow = (w) => { windows.append(windowRow(w, refreshEmpty)); refreshEmpty(); };
  s.work_hours.forEach(addWindow);
  refreshEmpty();
  inputs.utc_offset = h('input', { value: s.utc_offset, className: 'short', testid: 'utc_offset' });
  const dates = h('div', { testid: 'closed-dates' });
  s.closed_dates.forEach((d) => dates.append(dateRow(d)));
  const hoursSection = section('工作时间', 'routing-hours',
    labelled('时区（与 UTC 的时差）', inputs.utc_offset, '例如 +08:00（北京时间）'),
    h('p', { className: 'muted' },
      '每个时段含开始时间、不含结束时间；结束不晚于开始即为跨夜时段（属于开始的那一天）；同一天可设多个时段（如午休分段）。'),
    windows, emptyNote,
    h('button', { type: 'button', testid: 'window-add', onclick: () => addWindow(
      { weekdays: [1, 2, 3, 4, 5], start: '09:00', end: '18:00' }) }, '添加时段'),
    h('h3', {}, '休息日（全天不营业）'), dates,
    h('button', { type: 'button', testid: 'closed-date-add',
      onclick: () => dates.append(dateRow('')) }, '添加休息日'));

  const replySection = section('自动回复', 'routing-replies',
    h('label', { className: 'switch' }, check('auto_reply_enabled'), '自动回复总开关',
      h('small', { className: 'muted' }, '　控制非工作时间回复和无人接待回复')),
    replies.map(([kind, title, hint]) => {
      inputs[`${kind}_text`] = h('textarea', { rows: 2, maxlength: 600, testid: `${kind}_text` });
      inputs[`${kind}_text`].value = s[`${kind}_text`];
      return h('div', { className: 'reply-kind', testid: `reply-${kind}` },
        h('label', { className: 'switch' }, check(`${kind}_enabled`), title,
          h('small', { className: 'muted' }, `　${hint}`)),
        inputs[`${kind}_text`]);
    }));

  const numberSection = section('超时与免打扰', 'routing-numbers', numbers.map(([key, title, hint, min, max]) => {
    inputs[key] = h('input', { type: 'number', min, max, value: s[key], className: 'short', testid: key });
    return labelled(title, inputs[key], hint);
  }));

  const status = h('div', { className: 'status', testid: 'routing-status', role: 'status' });
  const save = h('button', { type: 'submit', testid: 'routing-save' }, '保存设置');
  const form = h('form', { testid: 'routing-form' }, modeSection, hoursSection, replySection,
    numberSection, h('div', { className: 'actions' }, save, status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    for (const [key, el] of Object.entries(inputs)) {
      if (el.type === 'checkbox') body[key] = el.checked;
      else if (el.type === 'number') body[key] = el.value === '' ? null : Number(el.value);
      else body[key] = el.value;
    }
    body.work_hours = [...windows.children].map((row) => row.read());
    body.closed_dates = [...dates.children].map((row) => row.read()).filter((d) => d);
    save.disabled = true;
    say(status, '正在保存…', 'muted');
    const put = await api.put('/api/admin/routing', body);
    save.disabled = false;
    if (!guard(put)) return;
    if (!put.ok) {
      showError(status, put);
      return;
    }
    say(status, describeChange(put.body.changed));
  });
  container.append(h('h1', {}, '接待规则'), form);
}
