// Template notifications and API keys. NOT WIRED YET: GET|PUT /api/admin/templates and
// /api/admin/api-keys are being added on another branch; until they are merged this page says so
// and points to scrm-admin and the template send log. Wire the two sections here when they land.
import { h, section } from './dom.js';

export function render(container) {
  container.append(h('h1', {}, '模板与接口密钥'),
    section('模板通知', 'templates-pending',
      h('p', { className: 'notice', testid: 'not-wired' },
        '此部分尚未开放：模板通知的网页设置正在开发中。目前请由运维人员使用 scrm-admin template set 设置。')),
    section('接口密钥', 'api-keys-pending',
      h('p', { className: 'notice' },
        '此部分尚未开放：接口密钥的网页管理正在开发中。目前请由运维人员使用 scrm-admin apikey add / list / revoke 管理。')));
}
