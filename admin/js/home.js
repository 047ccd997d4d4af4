// Home: the official accounts' health (GET /api/admin/health: WeChat errors that need a person)
// and links to the other pages.
import * as api from './api.js';
import { h, section, when } from './dom.js';

const links = [
  ['#routing', '接待规则', '分配模式、工作时间、自动回复、超时与免打扰'],
  ['#people', '人员与门店', '客服账号、门店及二维码、公众号'],
  ['#reassign', '批量更换归属', '员工离职或调岗时，把顾客交给其他客服'],
  ['#tools', '分配预览与日志', '“现在谁会收到这条消息？”、操作日志、数据保留'],
  ['#evaluations', '服务评价', '评价列表、回复、统计图、导出、评价项目'],
  ['#templates', '模板与快捷回复', '模板通知、发送记录、诊所系统的接口密钥和快捷回复分组'],
  ['/console/', '客服工作台', '接待顾客的页面'],
];

export async function render(container, { guard }) {
  const health = h('div', { testid: 'health' }, '正在检查…');
  container.append(
    section('公众号状态（最近 7 天）', 'home-health', health),
    section('功能', 'home-links', h('ul', { className: 'links' }, links.map(([href, title, text]) =>
      h('li', {}, h('a', { href }, title), h('span', { className: 'muted' }, `　${text}`))))),
  );
  const r = await api.get('/api/admin/health?days=7');
  if (!guard(r)) return;
  health.replaceChildren();
  if (!r.ok) {
    health.append(h('p', { className: 'error' }, r.body.error));
    return;
  }
  if (!r.body.accounts.length) {
    health.append(h('p', { className: 'muted' }, '尚未登记公众号，请在“人员与门店”中添加。'));
  }
  for (const a of r.body.accounts) {
    const box = h('div', { className: `account ${a.ok ? 'good' : 'bad'}`, testid: 'health-account' },
      h('strong', {}, a.appid), '　', a.ok ? '正常' : '需要处理');
    if (a.problems.length) {
      box.append(h('ul', {}, a.problems.map((p) => h('li', {},
        h('div', {}, `错误码 ${p.errcode}：${p.advice}`),
        h('small', { className: 'muted' },
          `${p.count} 次，最近 ${when(p.last_at)}；微信返回：${p.last_error}`)))));
    }
    health.append(box);
  }
}
