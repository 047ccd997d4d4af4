// The administration pages: sign-in (the console's cookie), the admin-role check, and the page
// switch by the URL's hash (#routing, #evaluations, …). Each page is a module with
// render(container, ctx) that loads what it shows.
import * as api from './api.js';
import { $ } from './dom.js';
import * as home from './home.js';
import * as routing from './routing.js';
import * as people from './people.js';
import * as reassign from './reassign.js';
import * as tools from './tools.js';
import * as evaluations from './evaluations.js';
import * as templates from './templates.js';

const pages = { home, routing, people, reassign, tools, evaluations, templates };
let me = null;

function show(view) {
  for (const v of ['signin-view', 'denied-view', 'app-view']) $(v).hidden = v !== view;
}

function showSignIn(message = '') {
  me = null;
  show('signin-view');
  $('signin-error').textContent = message;
}

// Every page calls this with each answer: 401 → back to sign-in with the gateway's reason,
// 403 on an admin endpoint → the role was taken away since.
function guard(r) {
  if (r.status === 401) {
    showSignIn(r.body.error);
    return false;
  }
  if (r.status === 403 && r.body.error === '仅管理员可以使用此功能') {
    showDenied(me);
    return false;
  }
  return true;
}

function showDenied(agent) {
  $('denied-who').textContent = agent ? agent.name : '';
  show('denied-view');
}

function route() {
  if (!me) return;
  const name = (location.hash || '#home').slice(1);
  const page = pages[name] || home;
  for (const a of $('nav').querySelectorAll('a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#${name}`);
  }
  const container = $('page');
  container.replaceChildren();
  container.dataset.page = pages[name] ? name : 'home';
  page.render(container, { me, guard });
}

function enter(agent) {
  me = agent;
  if (agent.role !== 'admin') {
    showDenied(agent);
    return;
  }
  show('app-view');
  $('me').textContent = `${agent.name}（管理员）`;
  route();
}

async function start() {
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const button = f.querySelector('button');
    button.disabled = true;
    const r = await api.signIn(f.clinic.value.trim(), f.name.value.trim(), f.password.value);
    button.disabled = false;
    if (!r.ok) {
      $('signin-error').textContent = r.body.error || '登录失败';
      return;
    }
    f.password.value = '';
    enter(r.body.agent);
  });
  const signOut = async () => {
    await api.signOut();
    showSignIn();
  };
  $('sign-out').addEventListener('click', signOut);
  $('denied-sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  const r = await api.me();
  if (r.ok) enter(r.body.agent);
  else showSignIn(r.status === 401 ? '' : r.body.error);
}

start();
