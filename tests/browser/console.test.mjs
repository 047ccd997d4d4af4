// The staff console in a real browser: Debian's chromium driven by playwright-core (scripts/setup
// installs both; nothing downloads a browser). Starts the fake WeChat and the gateway built by
// scripts/build against the services of scripts/services, in a clinic of its own, and plays issue
// 5's scenario with two agents. Screenshots go to --out.
//
//   node tests/browser/console.test.mjs --gateway build/bin/scrm-gateway \
//     --admin build/bin/scrm-admin --fake build/bin/fake-wechat --out build/browser-output
//
// Settings: SCRM_TEST_CONFIG (default <source>/.local/config.json) and the master key beside it.
// Fails (never skips) when chromium or playwright-core is missing: run scripts/setup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

import { arg, run, sourceDir, sleep, until, freePort, hex, alnum, rawGet } from './harness.mjs';

const bins = { gateway: arg('gateway'), admin: arg('admin'), fake: arg('fake') };
const outDir = arg('out');
const chromiumPath = process.env.SCRM_CHROMIUM || '/usr/bin/chromium';
const configPath = process.env.SCRM_TEST_CONFIG || path.join(sourceDir, '.local', 'config.json');

// ---- helpers ---------------------------------------------------------------------------------

// A child process whose output goes to a file in outDir; killed at the end.
const children = [];
function start(name, file, args, env) {
  const log = fs.openSync(path.join(outDir, `${name}.log`), 'w');
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  children.push(child);
  child.exitedEarly = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  return child;
}
const tempDirs = [];
function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}
async function stopAll() {
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await Promise.race([c.exitedEarly, sleep(15000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
}

// ---- the world: services, a clinic, the fake WeChat, the gateway, the browser -----------------

const sfx = `${process.pid}${hex(2)}`;
const world = {
  clinic: `浏览器测试诊所${sfx}`,
  agentA: `张医助${sfx}`,
  agentB: `李客服${sfx}`,
  password: `pw-${hex(8)}`,
  appid: `wx${hex(8)}`,
  originalId: `gh_${hex(6)}`,
  token: `Tok${alnum(12)}`,
  aesKey: alnum(43),
  secret: alnum(32),
  openid: `o${alnum(27)}`,
};

let config, masterKey, gatewayPort, fakeUrl, browser;

async function admin(args, extraEnv = {}) {
  const { stdout } = await run(bins.admin, ['--config', configPath, ...args], {
    env: { ...process.env, SCRM_MASTER_KEY: masterKey, ...extraEnv },
  });
  return stdout;
}

async function sql(query) {
  const m = config.mysql;
  const { stdout } = await run('mariadb', ['-h', m.host, '-P', String(m.port), '-u', m.user,
    '-D', m.database, '-N', '-B', '-e', query], { env: { ...process.env, MYSQL_PWD: m.password } });
  return stdout.trim();
}

async function fakeControl(method, p, body) {
  const res = await fetch(`${fakeUrl}${p}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  assert.ok(res.ok, `fake WeChat ${p}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

async function sentTexts() {
  const r = await fakeControl('GET', `/control/sent?appid=${world.appid}&openid=${world.openid}`);
  return r.sent.filter((m) => m.api === 'custom_send' && m.msgtype === 'text').map((m) => m.body);
}

// A 2×2 PNG, base64.
const tinyPng = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR42mP8z8DAwMDAxMDAwMDAAAANHQEDaB7T3gAAAABJRU5ErkJggg==';

// An AMR-NB file as WeChat stores voice: the "#!AMR\n" magic and `frames` 12.2 kbit/s frames
// (20 ms each; any payload decodes to some sound), so ffmpeg really transcodes it.
function amrFile(frames) {
  const frame = (i) => [0x3C, ...Array.from({ length: 31 }, (_, k) => (i * 7 + k + 1) & 0xFF)];
  return Buffer.concat([Buffer.from('#!AMR\n'),
    Buffer.from(Array.from({ length: frames }, (_, i) => frame(i)).flat())]);
}

async function setUp() {
  fs.mkdirSync(outDir, { recursive: true });
  assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: run scripts/setup`);
  for (const [name, file] of Object.entries(bins)) {
    assert.ok(fs.existsSync(file), `${name} binary ${file} is missing: run scripts/build`);
  }
  assert.ok(fs.existsSync(configPath), `${configPath} is missing: run scripts/services up`);
  config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  masterKey = fs.readFileSync(path.join(config.services.dir, 'master-key'), 'utf8').trim();

  const added = await admin(['clinic', 'add', '--name', world.clinic]);
  world.clinicId = Number(/\(id (\d+)\)/.exec(added)[1]);
  await admin(['account', 'add', '--clinic', world.clinic, '--appid', world.appid,
    '--original-id', world.originalId, '--token', world.token, '--aes-key', world.aesKey,
    '--secret', world.secret, '--safe-mode-only']);
  world.accountId = Number(await sql(
    `SELECT id FROM official_accounts WHERE appid = '${world.appid}'`));
  assert.ok(world.accountId > 0, 'the account id');
  for (const name of [world.agentA, world.agentB]) {
    await admin(['agent', 'add', '--clinic', world.clinic, '--name', name, '--role', 'service'],
      { SCRM_AGENT_PASSWORD: world.password });
  }
  // Every online agent is told of a fan's message (rule "shared"), and no auto-reply speaks.
  await admin(['routing', 'set', '--clinic', world.clinic, '--exclusive-mode', 'off',
    '--consultant-mode', 'off', '--auto-reply', 'off', '--hours', '[]']);
  // A text to a fan without an open window waits behind this template notice.
  await admin(['template', 'set', '--clinic', world.clinic, '--kind', 'reply_waiting',
    '--template-id', `TPL${hex(6)}`, '--keywords',
    '{"time1":"{{reply_time}}","thing2":"{{agent_name}}"}', '--enabled', 'on']);

  gatewayPort = await freePort();
  const fakeDir = tempDir('scrm-console-fake-');
  const fake = start('fake-wechat', bins.fake, ['--listen', '127.0.0.1:0', '--state-dir', fakeDir,
    '--account', [world.appid, world.secret, world.token, world.aesKey, world.originalId, 'safe',
      `http://127.0.0.1:${gatewayPort}/wx/${world.appid}`].join(',')]);
  const stateFile = path.join(fakeDir, 'fake-wechat.json');
  await until('the fake WeChat to start', () => {
    if (fake.exitCode !== null) throw new Error('fake-wechat exited: see fake-wechat.log');
    return fs.existsSync(stateFile) && fs.statSync(stateFile).size > 0;
  });
  fakeUrl = /^url=(.*)$/m.exec(fs.readFileSync(path.join(outDir, 'fake-wechat.log'), 'utf8'))[1];

  const dataDir = tempDir('scrm-console-gw-');
  const gateway = start('gateway', bins.gateway,
    ['--config', configPath, '--listen', `127.0.0.1:${gatewayPort}`], {
      SCRM_MASTER_KEY: masterKey,
      SCRM_WECHAT_API_BASE_URL: fakeUrl,
      SCRM_SPOOL_DIR: path.join(dataDir, 'spool'),
      SCRM_MEDIA_DIR: path.join(dataDir, 'media'),
      SCRM_WORKER_CLINICS: String(world.clinicId),
      SCRM_WORKER_ACCOUNTS: String(world.accountId),
      // The links of the "reply waiting" notice point here (http is allowed for loopback).
      SCRM_PUBLIC_BASE_URL: `http://127.0.0.1:${gatewayPort}`,
    });
  await until('the gateway to be ready', async () => {
    if (gateway.exitCode !== null) throw new Error('the gateway exited: see gateway.log');
    const r = await rawGet(gatewayPort, '/readyz');
    return r.status === 200;
  }, 30000);

  const { chromium } = await import('playwright-core').catch(() => {
    throw new Error('playwright-core is missing: run scripts/setup (npm ci in tests/browser)');
  });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // As root Chromium needs --no-sandbox; the rest keep it from calling home.
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-default-apps', '--disable-extensions', '--no-first-run',
      '--disable-domain-reliability', '--disable-client-side-phishing-detection',
      '--metrics-recording-only', '--no-default-browser-check',
      '--autoplay-policy=no-user-gesture-required'],
  });
}

const consoleUrl = () => `http://127.0.0.1:${gatewayPort}/console/`;

// Lets a test drop the console's WebSocket and keep it down for a while: every socket the page
// opens is recorded (window.__sockets), and while window.__wsBlocked is set new ones go to a
// closed port, so the page's reconnects fail until the test lifts the block.
function recordSockets() {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(url, ...rest) {
      super(window.__wsBlocked ? 'ws://127.0.0.1:9/' : url, ...rest);
      window.__sockets.push(String(url));
      window.__lastSocket = this;
    }
  };
}

async function openConsole(agentName) {
  const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1400, height: 800 } });
  await context.addInitScript(recordSockets);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(consoleUrl());
  await page.getByTestId('signin-clinic').fill(world.clinic);
  await page.getByTestId('signin-name').fill(agentName);
  await page.getByTestId('signin-password').fill(world.password);
  await page.getByTestId('signin-submit').click();
  await page.getByTestId('connection').filter({ hasText: '已连接' }).waitFor();
  await until(`${agentName}'s accepting switch`, () => page.getByTestId('accepting').isChecked());
  return page;
}

// The fan's entry in a page's conversation list.
const conversationIn = (page) =>
  page.locator(`[data-testid=conversation][data-key="${world.accountId}/${world.openid}"]`);

const shot = (page, name) => page.screenshot({ path: path.join(outDir, `${name}.png`) });

// ---- the tests -------------------------------------------------------------------------------

test('the staff console', async (t) => {
  try {
    await setUp();
    await t.test('the console is served as static files, and only those', async () => {
      const index = await rawGet(gatewayPort, '/console/');
      assert.equal(index.status, 200);
      assert.match(index.headers['content-type'], /^text\/html; charset=utf-8/);
      assert.equal(index.headers['cache-control'], 'no-cache');
      assert.match(index.headers['content-security-policy'], /default-src 'self'/);
      assert.match(index.body, /客服工作台/);
      const js = await rawGet(gatewayPort, '/console/js/main.js');
      assert.equal(js.status, 200);
      assert.match(js.headers['content-type'], /^text\/javascript/);
      const css = await rawGet(gatewayPort, '/console/console.css');
      assert.match(css.headers['content-type'], /^text\/css/);
      const again = await rawGet(gatewayPort, '/console/js/main.js',
        { 'If-None-Match': js.headers.etag });
      assert.equal(again.status, 304);
      const bare = await rawGet(gatewayPort, '/console');
      assert.equal(bare.status, 301);
      assert.equal(bare.headers.location, '/console/');
      for (const target of ['/console/../CMakeLists.txt', '/console/js/../../README.md',
        '/console/%2e%2e/README.md', '/console/..%2fREADME.md', '/console/js%2fmain.js',
        '/console/..%5cREADME.md', '/console//etc/passwd', '/console/%00index.html']) {
        const r = await rawGet(gatewayPort, target);
        assert.equal(r.status, 400, target);
        assert.ok(JSON.parse(r.body).error, target);
      }
      for (const target of ['/console/js/', '/console/nope.html', '/console/README.md']) {
        const r = await rawGet(gatewayPort, target);
        assert.equal(r.status, 404, target);
        assert.equal(JSON.parse(r.body).error, '页面不存在');
      }
    });

    const a = await openConsole(world.agentA);
    const b = await openConsole(world.agentB);
    await shot(a, '01-a-signed-in');
    const message = `你好，想预约明天上午洗牙 ${hex(3)}`;
    const replyA = `您好，明天上午十点可以吗？${hex(3)}`;
    const replyB = `我是李客服，继续为您服务 ${hex(3)}`;

    await t.test('a fan message from the fake WeChat appears live in agent A\'s console', async () => {
      const d = await fakeControl('POST', '/control/deliver', {
        appid: world.appid, message: { type: 'text', from: world.openid, content: message } });
      assert.equal(d.answered, true, JSON.stringify(d));
      const conv = a.getByTestId('conversation').filter({ hasText: message });
      await conv.waitFor();
      assert.equal(await conv.getByTestId('unread').textContent(), '1');
      assert.match(await a.title(), /^\(1\) 客服工作台$/);
      assert.ok(Number(await a.evaluate(() => document.body.dataset.chimes)) >= 1, 'a chime');
      await shot(a, '02-a-new-message');
      await conv.click();
      await a.getByTestId('message-in').filter({ hasText: message }).waitFor();
      // Opening a conversation does not read it for everyone: only a reply (or ignore) does.
      assert.equal(await conv.getByTestId('unread').textContent(), '1');
      assert.match(await a.title(), /^\(1\) 客服工作台$/);
    });

    await t.test('agent A replies and the fake WeChat receives the customer-service message', async () => {
      await a.getByTestId('reply-text').fill(replyA);
      await a.getByTestId('reply-send').click();
      await a.getByTestId('message-out').filter({ hasText: replyA }).waitFor();
      await a.getByTestId('chat-markers').filter({ hasText: '由我接待' }).waitFor();
      // The reply spent one of the 5 slots the fan's message opened.
      await a.locator('#chat-window').filter({ hasText: '还可发送 4 条' }).waitFor({ timeout: 5000 });
      assert.equal(await a.getByTestId('chat-error').textContent(), '');
      await until('the fake WeChat to receive A\'s reply',
        async () => (await sentTexts()).some((body) => body.includes(replyA)));
      // The reply's delivery state follows the outbox (a push, or the history read again).
      await a.getByTestId('message-out').filter({ hasText: replyA }).locator('[data-state=sent]')
        .waitFor();
      await shot(a, '03-a-replied');
    });

    await t.test('the unread badges and the title badge clear after the reply', async () => {
      const convA = conversationIn(a).filter({ hasText: replyA });
      await convA.waitFor();
      assert.equal(await convA.getByTestId('unread').count(), 0);
      assert.equal(await a.title(), '客服工作台');
      // B was told too (an "unread" push), without opening anything.
      const convB = conversationIn(b);
      await until('B\'s badge to clear', async () => (await convB.getByTestId('unread').count()) === 0);
      await until('B\'s title to clear', async () => (await b.title()) === '客服工作台');
    });

    await t.test('agent B sees A holding the session and B\'s send is refused', async () => {
      const conv = conversationIn(b);
      await conv.waitFor();
      await conv.click();
      await b.getByTestId('accept').click();
      const banner = b.getByTestId('holder-banner');
      await banner.filter({ hasText: `「${world.agentA}」` }).waitFor();
      await b.getByTestId('chat-markers').filter({ hasText: `「${world.agentA}」接待中` }).waitFor();
      await shot(b, '04-b-sees-holder');
      await b.getByTestId('reply-text').fill(replyB);
      await b.getByTestId('reply-send').click();
      await b.getByTestId('chat-error').filter({ hasText: `该顾客正在由「${world.agentA}」接待` })
        .waitFor();
      // B reads the whole history (A's reply included) but its own text was not sent.
      await b.getByTestId('message-out').filter({ hasText: replyA }).waitFor();
      assert.equal(await b.getByTestId('message-out').filter({ hasText: replyB }).count(), 0);
      assert.equal(await b.getByTestId('reply-text').inputValue(), replyB, 'the text is kept');
      assert.ok(!(await sentTexts()).some((body) => body.includes(replyB)));
      await shot(b, '05-b-refused');
    });

    await t.test('after A ends the session B can reply', async () => {
      await a.getByTestId('end').click();
      await a.getByTestId('message-note').filter({ hasText: '您结束了此会话' }).waitFor();
      assert.equal(await a.getByTestId('chat-markers').textContent(), '');
      await b.getByTestId('reply-send').click();
      await b.getByTestId('message-out').filter({ hasText: replyB }).waitFor();
      await b.getByTestId('chat-markers').filter({ hasText: '由我接待' }).waitFor();
      assert.ok(await b.getByTestId('holder-banner').isHidden());
      await until('the fake WeChat to receive B\'s reply',
        async () => (await sentTexts()).some((body) => body.includes(replyB)));
      await shot(a, '06-a-ended');
      await shot(b, '07-b-replied');
    });

    const remark = `王女士${hex(2)}`;
    await t.test('a remark set in the fan panel names the conversation in every list', async () => {
      await b.getByTestId('fan-remark').fill(remark);
      await b.getByTestId('fan-tags').fill('洗牙，新客');
      await b.getByTestId('fan-save').click();
      await b.getByTestId('fan-name').filter({ hasText: remark }).waitFor();
      assert.equal(await b.getByTestId('fan-error').textContent(), '');
      await b.getByTestId('conversation-name').filter({ hasText: remark }).waitFor();
      await b.getByTestId('chat-title').filter({ hasText: remark }).waitFor();
      // A's list follows the "fan" push.
      await a.getByTestId('conversation-name').filter({ hasText: remark }).waitFor();
      assert.equal(await sql(`SELECT remark FROM fans WHERE openid = '${world.openid}'`), remark);
      await shot(b, '08-b-remark');
    });

    await t.test('the search finds the fan by remark and nothing for other words', async () => {
      await a.getByTestId('search').fill(`无此顾客${hex(2)}`);
      await a.locator('#list-empty:visible').waitFor();
      assert.equal(await a.getByTestId('conversation').count(), 0);
      await a.getByTestId('search').fill(remark.slice(1));
      await a.getByTestId('conversation-name').filter({ hasText: remark }).waitFor();
      assert.equal(await a.getByTestId('conversation').count(), 1);
      await shot(a, '09-a-search');
      await a.getByTestId('search').fill('');
    });

    await t.test('a reload shows the list and the history from the API', async () => {
      await a.reload();
      await a.getByTestId('connection').filter({ hasText: '已连接' }).waitFor();
      const conv = conversationIn(a).filter({ hasText: remark });
      await conv.waitFor();
      assert.match(await conv.textContent(), new RegExp(replyB.slice(0, 10)));
      await conv.click();
      for (const [id, text] of [['message-in', message], ['message-out', replyA],
        ['message-out', replyB]]) {
        await a.getByTestId(id).filter({ hasText: text }).waitFor();
      }
      await a.getByTestId('message-out').filter({ hasText: replyB })
        .filter({ hasText: world.agentB }).waitFor();
      await until('the fan panel', async () =>
        (await a.getByTestId('fan-remark').inputValue()) === remark);
      await shot(a, '10-a-reloaded');
    });

    await t.test('a dropped connection resumes and gets the pushes it missed', async () => {
      const chimes = () => b.evaluate(() => Number(document.body.dataset.chimes || 0));
      const before = await chimes();
      await b.evaluate(() => {
        window.__wsBlocked = true;
        window.__lastSocket.close();
      });
      await b.getByTestId('connection').filter({ hasText: '连接已断开' }).waitFor();
      // B holds the session (it replied last): the fan's message is for B alone.
      const missed = `我在路上了，大概晚到十分钟 ${hex(3)}`;
      const d = await fakeControl('POST', '/control/deliver', {
        appid: world.appid, message: { type: 'text', from: world.openid, content: missed } });
      assert.equal(d.answered, true, JSON.stringify(d));
      assert.equal(await b.getByTestId('message-in').filter({ hasText: missed }).count(), 0);
      await b.evaluate(() => { window.__wsBlocked = false; });
      await b.getByTestId('connection').filter({ hasText: '已连接' }).waitFor({ timeout: 30000 });
      await b.getByTestId('message-in').filter({ hasText: missed }).waitFor();
      assert.ok((await chimes()) > before, 'the missed message came as a push');
      const urls = await b.evaluate(() => window.__sockets);
      assert.match(urls.at(-1), /\?last_event_id=\d+-\d+$/);
      await shot(b, '11-b-resumed');
    });

    await t.test('images and voice show in the history', async () => {
      // The fan's image (a tiny PNG) the fake WeChat hands out; voice bytes with a recognition.
      const image = await fakeControl('POST', '/control/media', { appid: world.appid,
        type: 'image', content_type: 'image/png', data_base64: tinyPng });
      const voice = await fakeControl('POST', '/control/media', { appid: world.appid,
        type: 'voice', content_type: 'audio/amr',
        data_base64: amrFile(100).toString('base64') });
      const recognition = `明天上午有空 ${hex(3)}`;
      for (const message of [
        { type: 'image', from: world.openid, media_id: image.media_id },
        { type: 'voice', from: world.openid, media_id: voice.media_id, recognition }]) {
        const d = await fakeControl('POST', '/control/deliver', { appid: world.appid, message });
        assert.equal(d.answered, true, JSON.stringify(d));
      }
      const img = b.getByTestId('message-in').locator('img');
      await img.waitFor({ timeout: 30000 });
      assert.match(await img.getAttribute('src'), /^\/api\/media\/\d+$/);
      await until('the image to load', () => img.evaluate((e) => e.complete && e.naturalWidth === 2));
      const audio = b.getByTestId('message-in').filter({ hasText: recognition }).getByTestId('voice');
      await audio.waitFor({ timeout: 30000 });
      assert.match(await audio.getAttribute('src'), /^\/api\/media\/\d+\?format=mp3$/);
      await shot(b, '12-b-media');
    });

    await t.test('a voice message plays', async () => {
      const audio = b.getByTestId('message-in').getByTestId('voice');
      const src = await audio.getAttribute('src');
      const mp3 = await b.evaluate(async (url) => {
        const r = await fetch(url);
        return { status: r.status, type: r.headers.get('content-type'),
          magic: [...new Uint8Array(await r.arrayBuffer()).slice(0, 3)] };
      }, src);
      assert.equal(mp3.status, 200, JSON.stringify(mp3));
      assert.equal(mp3.type, 'audio/mpeg');
      // An ID3 tag or an MPEG frame sync: MP3, not the AMR as stored.
      assert.ok(String.fromCharCode(...mp3.magic) === 'ID3' ||
        (mp3.magic[0] === 0xFF && (mp3.magic[1] & 0xE0) === 0xE0), JSON.stringify(mp3));
      // Chromium decodes it and plays it (the page is launched without the autoplay gesture rule):
      // the 'playing' event and time that moves on. The deadline only ends a hung wait.
      const played = await audio.evaluate((e) => new Promise((resolve, reject) => {
        const seen = { playing: false };
        const fail = (why) => reject(new Error(`${why} (readyState ${e.readyState}, error ${e.error?.code})`));
        const timer = setTimeout(() => fail('the voice did not play in time'), 30000);
        e.addEventListener('playing', () => { seen.playing = true; });
        e.addEventListener('error', () => fail('the voice failed to load'));
        e.addEventListener('timeupdate', () => {
          if (!seen.playing || e.currentTime <= 0) return;
          clearTimeout(timer);
          e.pause();
          resolve({ playing: seen.playing, readyState: e.readyState, duration: e.duration,
            currentTime: e.currentTime });
        });
        e.play().catch((err) => fail(`play() refused: ${err}`));
      }));
      assert.equal(played.playing, true);
      assert.ok(played.readyState >= 2, JSON.stringify(played));
      assert.ok(played.duration > 1.5 && played.duration < 3, `2 s of AMR: ${JSON.stringify(played)}`);
      assert.ok(played.currentTime > 0, JSON.stringify(played));
      await b.getByTestId('message-in').locator('text=此语音无法在浏览器中播放').count()
        .then((n) => assert.equal(n, 0));
      await shot(b, '12b-b-voice-played');
    });

    await t.test('an out-of-window reply produces the template notification and its page shows the reply', async () => {
      const fan = `o${alnum(27)}`;
      const question = `上次的检查结果出来了吗 ${hex(3)}`;
      const d = await fakeControl('POST', '/control/deliver', {
        appid: world.appid, message: { type: 'text', from: fan, content: question } });
      assert.equal(d.answered, true, JSON.stringify(d));
      await b.locator(`[data-testid=conversation][data-key="${world.accountId}/${fan}"]`).click();
      await b.getByTestId('message-in').filter({ hasText: question }).waitFor();
      // The fan's message opened a window of 5 customer-service messages: B uses them up.
      for (let i = 1; i <= 5; i++) {
        const r = await b.evaluate(async ([acc, openid, text]) => {
          const res = await fetch(`/api/conversations/${acc}/${openid}/send`, { method: 'POST',
            headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text }) });
          return { status: res.status, body: await res.json() };
        }, [world.accountId, fan, `第${i}条回复`]);
        assert.equal(r.status, 200, JSON.stringify(r));
        assert.equal(r.body.window.remaining, 5 - i, JSON.stringify(r));
      }
      await until('the fake WeChat to receive the 5 replies', async () => {
        const r = await fakeControl('GET', `/control/sent?appid=${world.appid}&openid=${fan}`);
        return r.sent.filter((m) => m.api === 'custom_send').length === 5;
      });
      const advice = `检查结果正常，请<b>下周一</b>上午空腹复诊 & 带上病历 ${hex(3)}`;
      const answer = b.waitForResponse((r) => r.url().endsWith(`/${fan}/send`) &&
        r.request().method() === 'POST');
      await b.getByTestId('reply-text').fill(advice);
      await b.getByTestId('reply-send').click();
      const body = await (await answer).json();
      assert.ok(['notice_sent', 'notice_queued'].includes(body.delivery), JSON.stringify(body));
      assert.equal(body.window.status, 'exhausted', JSON.stringify(body));
      await b.getByTestId('message-out').filter({ hasText: advice }).waitFor();
      await b.getByTestId('message-note').filter({ hasText: '已通过“客服回复提醒”模板通知顾客' }).waitFor();
      assert.equal(await b.getByTestId('chat-error').textContent(), '');
      await shot(b, '12c-b-reply-waiting');
      // The fan got the template message with the reply page's link, and never the text itself.
      const notice = await until('the fake WeChat to receive the notice', async () => {
        const r = await fakeControl('GET', `/control/sent?appid=${world.appid}&openid=${fan}`);
        return r.sent.find((m) => m.api === 'template_send');
      });
      const sent = JSON.parse(notice.body);
      const link = new RegExp(`^http://127\\.0\\.0\\.1:${gatewayPort}/reply/${body.reply_id}\\.[A-Za-z0-9_-]{22}$`);
      assert.match(sent.url, link, notice.body);
      assert.ok(!notice.body.includes('复诊'), 'the text is not in the template');
      const all = await fakeControl('GET', `/control/sent?appid=${world.appid}&openid=${fan}`);
      assert.equal(all.sent.filter((m) => m.api === 'custom_send').length, 5);
      // The fan opens the link: the page shows the reply, escaped.
      const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 390, height: 844 } });
      try {
        const phone = await context.newPage();
        const page = await phone.goto(sent.url);
        assert.equal(page.status(), 200);
        await phone.getByText(advice).waitFor();
        await phone.getByText(world.agentB).first().waitFor();
        assert.equal(await phone.locator('b').count(), 0, 'the text is not markup');
        await shot(phone, '12d-fan-reply-page');
      } finally {
        await context.close();
      }
      // Back to the first fan's conversation, which the tests below go on with.
      await conversationIn(b).click();
      await b.getByTestId('message-out').filter({ hasText: replyB }).waitFor();
    });

    await t.test('ignore unread clears the badge for every agent', async () => {
      const other = `o${alnum(27)}`;
      const d = await fakeControl('POST', '/control/deliver', {
        appid: world.appid, message: { type: 'text', from: other, content: `请问周末营业吗 ${hex(3)}` } });
      assert.equal(d.answered, true, JSON.stringify(d));
      const entry = (page) =>
        page.locator(`[data-testid=conversation][data-key="${world.accountId}/${other}"]`);
      await entry(a).getByTestId('unread').waitFor();
      await entry(b).getByTestId('unread').waitFor();
      await entry(a).click();
      await a.getByTestId('ignore-unread').click();
      await until('A\'s badge to clear', async () => (await entry(a).getByTestId('unread').count()) === 0);
      await until('B\'s badge to clear', async () => (await entry(b).getByTestId('unread').count()) === 0);
      assert.ok(await a.getByTestId('ignore-unread').isHidden());
    });

    await t.test('the agents view shows who is online', async () => {
      await b.getByTestId('show-agents').click();
      const agents = b.getByTestId('agent');
      await agents.filter({ hasText: `${world.agentA}（在线` }).waitFor();
      await agents.filter({ hasText: `${world.agentB}（在线` }).waitFor();
      await shot(b, '13-b-agents');
      await b.getByTestId('agents-dialog').getByRole('button', { name: '关闭' }).click();
    });

    await t.test('a clinic snippet and an image go to the fan from the reply box', async () => {
      // An administrator of the clinic adds a snippet group through the admin API (a token).
      const boss = { name: `王管理${sfx}`, password: `pw-${hex(8)}` };
      await admin(['agent', 'add', '--clinic', world.clinic, '--name', boss.name, '--role', 'admin',
        '--no-consultation'], { SCRM_AGENT_PASSWORD: boss.password });
      const api = async (method, p, body, token) => {
        const res = await fetch(`${consoleUrl()}..${p}`, { method,
          headers: { 'Content-Type': 'application/json',
            ...(token ? { Authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify(body) });
        const data = await res.json();
        return { status: res.status, body: data };
      };
      const signIn = await api('POST', '/api/agent/sign-in',
        { clinic: world.clinic, name: boss.name, password: boss.password });
      assert.equal(signIn.status, 200, JSON.stringify(signIn));
      const group = await api('POST', '/api/admin/snippet-groups', { name: `预约${hex(2)}` },
        signIn.body.token);
      assert.equal(group.status, 201, JSON.stringify(group));
      const snippetText = `您好，请问想预约哪一天？我们上午九点开门 ${hex(3)}`;
      const snippet = await api('POST', `/api/admin/snippet-groups/${group.body.group.id}/snippets`,
        { text: snippetText }, signIn.body.token);
      assert.equal(snippet.status, 201, JSON.stringify(snippet));

      // A new fan writes (a window of 5 customer-service messages); A reloads to get the snippets.
      const fan = `o${alnum(27)}`;
      const question = `你们几点开门？${hex(3)}`;
      const d = await fakeControl('POST', '/control/deliver', {
        appid: world.appid, message: { type: 'text', from: fan, content: question } });
      assert.equal(d.answered, true, JSON.stringify(d));
      await a.reload();
      await a.getByTestId('connection').filter({ hasText: '已连接' }).waitFor();
      await a.locator(`[data-testid=conversation][data-key="${world.accountId}/${fan}"]`).click();
      await a.getByTestId('message-in').filter({ hasText: question }).waitFor();
      const picker = a.getByTestId('snippet-select');
      await picker.waitFor();
      await picker.selectOption(String(snippet.body.snippet.id));
      assert.equal(await a.getByTestId('reply-text').inputValue(), snippetText);
      await shot(a, '13b-a-snippet-picked');
      await a.getByTestId('reply-send').click();
      await a.getByTestId('message-out').filter({ hasText: snippetText })
        .locator('[data-state=sent]').waitFor();
      const sentToFan = async () =>
        (await fakeControl('GET', `/control/sent?appid=${world.appid}&openid=${fan}`)).sent
          .filter((m) => m.api === 'custom_send');
      await until('the fake WeChat to receive the snippet', async () =>
        (await sentToFan()).some((m) => m.msgtype === 'text' &&
          JSON.parse(m.body).text.content === snippetText));

      // The image button: the file chooser gets a PNG, the page sends it as a JPEG.
      const chooser = a.waitForEvent('filechooser');
      await a.getByTestId('image-button').click();
      const answer = a.waitForResponse((r) => r.url().endsWith(`/${fan}/send-image`) &&
        r.request().method() === 'POST');
      await (await chooser).setFiles({ name: 'photo.png', mimeType: 'image/png',
        buffer: Buffer.from(tinyPng, 'base64') });
      const sent = await answer;
      assert.equal(sent.status(), 200, await sent.text());
      assert.equal(sent.request().headers()['content-type'], 'image/jpeg');
      const image = await until('the fake WeChat to receive the image', async () =>
        (await sentToFan()).find((m) => m.msgtype === 'image'));
      const mediaId = JSON.parse(image.body).image.media_id;
      const uploads = (await fakeControl('GET', '/control/calls?api=media_upload')).calls
        .filter((c) => c.status === 200 && c.errcode === 0 &&
          JSON.parse(c.response_body).media_id === mediaId);
      assert.equal(uploads.length, 1, 'the image sent is the one uploaded');
      assert.match(uploads[0].target, /type=image/);
      // The history shows the image, delivered.
      await a.getByTestId('message-out').filter({ hasText: '[图片]' })
        .locator('[data-state=sent]').waitFor();
      assert.equal(await a.getByTestId('chat-error').textContent(), '');
      await shot(a, '13c-a-image-sent');

      // A's own snippet: saved from the reply box, in the picker under 我的常用语, then removed.
      const mine = `我的常用语 ${hex(3)}`;
      await a.getByTestId('reply-text').fill(mine);
      await a.getByTestId('snippet-save').click();
      const own = a.locator('#snippet-select optgroup[label="我的常用语"] option').filter({ hasText: mine });
      await own.waitFor({ state: 'attached' });
      const ownId = await own.getAttribute('value');
      const listed = await a.evaluate(async () => (await fetch('/api/snippets')).json());
      assert.deepEqual(listed.own.map((x) => x.text), [mine]);
      await a.getByTestId('reply-text').fill('');
      await picker.selectOption(ownId);
      assert.equal(await a.getByTestId('reply-text').inputValue(), mine);
      a.once('dialog', (d) => d.accept());
      await a.getByTestId('snippet-delete').click();
      await own.waitFor({ state: 'detached' });
      const after = await a.evaluate(async () => (await fetch('/api/snippets')).json());
      assert.deepEqual(after.own, []);
      assert.equal(after.groups.length, listed.groups.length, 'the clinic\'s groups are untouched');
      await a.getByTestId('reply-text').fill('');
    });

    await t.test('images are downscaled to a JPEG of at most 2 MB; missing endpoints hide their controls', async () => {
      const r = await a.evaluate(async () => {
        // 3000×2400 of noise: a PNG far over 2 MB that JPEG must shrink.
        const c = document.createElement('canvas');
        c.width = 3000;
        c.height = 2400;
        const g = c.getContext('2d');
        const data = g.createImageData(c.width, c.height);
        for (let i = 0; i < data.data.length; i++) data.data[i] = (i * 2654435761) >>> 24;
        g.putImageData(data, 0, 0);
        const png = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
        const { downscale } = await import('/console/js/compose.js');
        const jpeg = await downscale(new File([png], 'big.png', { type: 'image/png' }));
        const bitmap = await createImageBitmap(jpeg);
        return { png: png.size, size: jpeg.size, type: jpeg.type, w: bitmap.width, h: bitmap.height };
      });
      assert.ok(r.png > 2 * 1024 * 1024, `the test image is big enough (${r.png})`);
      assert.ok(r.size <= 2 * 1024 * 1024, `downscaled to ${r.size} bytes`);
      assert.equal(r.type, 'image/jpeg');
      assert.ok(Math.max(r.w, r.h) <= 2048 && Math.abs(r.w / r.h - 3000 / 2400) < 0.01, JSON.stringify(r));
      // The image button and the snippet picker are shown exactly when their endpoints exist.
      const probe = await a.evaluate(async ([acc, openid]) => ({
        image: (await fetch(`/api/conversations/${acc}/${openid}/send-image`)).status,
        snippets: (await fetch('/api/snippets')).status,
      }), [world.accountId, world.openid]);
      assert.equal(await a.getByTestId('image-button').isHidden(), probe.image === 404);
      if (probe.snippets === 404) assert.ok(await a.getByTestId('snippet-select').isHidden());
    });

    await t.test('an agent changes its password', async () => {
      const newPassword = `new-${hex(8)}`;
      await b.getByTestId('show-password').click();
      await b.getByTestId('password-old').fill(`wrong-${hex(4)}`);
      await b.getByTestId('password-new').fill(newPassword);
      await b.getByTestId('password-again').fill(newPassword);
      await b.getByTestId('password-submit').click();
      await b.getByTestId('password-message').filter({ hasText: '原密码不正确' }).waitFor();
      await b.getByTestId('password-old').fill(world.password);
      await b.getByTestId('password-new').fill(newPassword);
      await b.getByTestId('password-again').fill(newPassword);
      await b.getByTestId('password-submit').click();
      await b.getByTestId('password-message').filter({ hasText: '密码已修改' }).waitFor();
      await shot(b, '14-b-password');
      await b.keyboard.press('Escape');
      const signIn = async (password) => (await fetch(`${consoleUrl()}../api/agent/sign-in`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ clinic: world.clinic, name: world.agentB, password }) })).status;
      assert.equal(await signIn(newPassword), 200);
    });

    await t.test('B transfers the conversation to A', async () => {
      const form = b.getByTestId('transfer-form');
      await form.locator('select').selectOption({ label: `客服：${world.agentA}` });
      await form.getByRole('button', { name: '转接' }).click();
      await b.getByTestId('message-note').filter({ hasText: `已转接给「${world.agentA}」` }).waitFor();
      await b.getByTestId('holder-banner').filter({ hasText: `「${world.agentA}」` }).waitFor();
      await conversationIn(a).getByTestId('holder-marker').filter({ hasText: '由我接待' }).waitFor();
      await shot(b, '15-b-transferred');
    });

    await t.test('the accepting switch and sign-out', async () => {
      const online = () => b.evaluate(async () => (await (await fetch('/api/agent/me')).json()).online);
      assert.equal(await online(), true);
      await b.getByTestId('accepting').uncheck();
      await until('B to stop accepting', async () => (await online()) === false);
      await b.getByTestId('accepting').check();
      await until('B to accept again', async () => (await online()) === true);
      await a.getByRole('button', { name: '退出登录' }).click();
      await a.getByTestId('signin-submit').waitFor();
      const status = await a.evaluate(async () => (await fetch('/api/agent/me')).status);
      assert.equal(status, 401, 'the cookie no longer signs in');
      await shot(a, '16-a-signed-out');
    });

    await t.test('the pages ran without script errors', () => {
      assert.deepEqual(a.errors, []);
      assert.deepEqual(b.errors, []);
    });
  } finally {
    if (browser) await browser.close();
    await stopAll();
  }
});
