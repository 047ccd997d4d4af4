// The agent's own account: the password dialog (POST /api/agent/password).
import * as api from './api.js';

const $ = (id) => document.getElementById(id);

export function init({ onAuth }) {
  const dialog = $('password-dialog');
  const form = $('password-form');
  const message = $('password-message');
  $('show-password').addEventListener('click', () => {
    form.reset();
    message.textContent = '';
    message.className = 'error';
    dialog.showModal();
  });
  $('password-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (form.new.value !== form.again.value) {
      message.textContent = '两次输入的新密码不一致';
      return;
    }
    const r = await api.changePassword(form.old.value, form.new.value);
    if (onAuth(r)) return;
    form.reset();
    message.className = r.ok ? 'ok' : 'error';
    message.textContent = r.ok ? '密码已修改' : r.body.error || `修改失败（${r.status}）`;
  });
}
