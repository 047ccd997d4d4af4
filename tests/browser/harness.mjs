// What a browser test needs around the page: the binaries from the command line, the services of
// scripts/services, a clinic of its own with an official account, the fake WeChat and the gateway
// as child processes, headless Debian chromium through playwright-core, and polling with a
// deadline (never a sleep as an assertion). Used by admin.test.mjs; console.test.mjs still has
// its own copies of these helpers (it is being reworked on another branch) and can import these.
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = path.resolve(here, '..', '..');

export function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || !process.argv[i + 1]) throw new Error(`--${name} is required`);
  return path.resolve(process.argv[i + 1]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn every `everyMs` until it returns something truthy (returned) or the limit passes.
export async function until(what, fn, limitMs = 15000, everyMs = 100) {
  const deadline = Date.now() + limitMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const hex = (n) => randomBytes(n).toString('hex');
export const alnum = (n) => {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(n)].map((b) => chars[b % chars.length]).join('');
};
// A WeChat-like OpenID: 28 characters.
export const openid = () => `o${alnum(27)}`;

// A raw GET: the path is sent exactly as given (fetch would resolve "..").
export function rawGet(port, target, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// The page, recording its script errors in page.errors.
export function watched(page) {
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  return page;
}

// The test's processes, folders and browser; world.stop() ends them all.
export class World {
  constructor({ bins, outDir, clinicPrefix }) {
    const sfx = `${process.pid}${hex(2)}`;
    this.bins = bins;
    this.outDir = outDir;
    this.sfx = sfx;
    this.clinic = `${clinicPrefix}${sfx}`;
    this.appid = `wx${hex(8)}`;
    this.originalId = `gh_${hex(6)}`;
    this.token = `Tok${alnum(12)}`;
    this.aesKey = alnum(43);
    this.secret = alnum(32);
    this.children = [];
    this.tempDirs = [];
    this.chromiumPath = process.env.SCRM_CHROMIUM || '/usr/bin/chromium';
    this.configPath = process.env.SCRM_TEST_CONFIG || path.join(sourceDir, '.local', 'config.json');
  }

  start(name, file, args, env) {
    const log = fs.openSync(path.join(this.outDir, `${name}.log`), 'w');
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
    this.children.push(child);
    child.exitedEarly = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    return child;
  }

  tempDir(prefix) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.tempDirs.push(d);
    return d;
  }

  async admin(args, extraEnv = {}) {
    const { stdout } = await run(this.bins.admin, ['--config', this.configPath, ...args], {
      env: { ...process.env, SCRM_MASTER_KEY: this.masterKey, ...extraEnv },
    });
    return stdout;
  }

  async sql(query) {
    const m = this.config.mysql;
    const { stdout } = await run('mariadb', ['-h', m.host, '-P', String(m.port), '-u', m.user,
      '-D', m.database, '-N', '-B', '-e', query], { env: { ...process.env, MYSQL_PWD: m.password } });
    return stdout.trim();
  }

  async fake(method, p, body) {
    const res = await fetch(`${this.fakeUrl}${p}`, {
      method, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json();
    assert.ok(res.ok, `fake WeChat ${p}: ${res.status} ${JSON.stringify(data)}`);
    return data;
  }

  // A fan's text message delivered by the fake WeChat to the gateway's webhook: the fake's
  // record of the delivery, with the gateway's passive reply (reply.content) decrypted.
  deliverText(from, content) {
    return this.fake('POST', '/control/deliver',
      { appid: this.appid, message: { type: 'text', from, content } });
  }

  // The clinic with its account (safe mode), the fake WeChat and the gateway. Agents and routing
  // settings are the test's (scrm-admin) before or after.
  async up() {
    fs.mkdirSync(this.outDir, { recursive: true });
    assert.ok(fs.existsSync(this.chromiumPath), `${this.chromiumPath} is missing: run scripts/setup`);
    for (const [name, file] of Object.entries(this.bins)) {
      assert.ok(fs.existsSync(file), `${name} binary ${file} is missing: run scripts/build`);
    }
    assert.ok(fs.existsSync(this.configPath), `${this.configPath} is missing: run scripts/services up`);
    this.config = JSON.parse(fs.readFileSync(this.configPath, 'utf8'));
    this.masterKey = fs.readFileSync(path.join(this.config.services.dir, 'master-key'), 'utf8').trim();

    const added = await this.admin(['clinic', 'add', '--name', this.clinic]);
    this.clinicId = Number(/\(id (\d+)\)/.exec(added)[1]);
    await this.admin(['account', 'add', '--clinic', this.clinic, '--appid', this.appid,
      '--original-id', this.originalId, '--token', this.token, '--aes-key', this.aesKey,
      '--secret', this.secret, '--safe-mode-only']);
    this.accountId = Number(await this.sql(
      `SELECT id FROM official_accounts WHERE appid = '${this.appid}'`));
    assert.ok(this.accountId > 0, 'the account id');

    this.port = await freePort();
    const fakeDir = this.tempDir('scrm-browser-fake-');
    const fake = this.start('fake-wechat', this.bins.fake, ['--listen', '127.0.0.1:0',
      '--state-dir', fakeDir, '--account', [this.appid, this.secret, this.token, this.aesKey,
        this.originalId, 'safe', `http://127.0.0.1:${this.port}/wx/${this.appid}`].join(',')]);
    const stateFile = path.join(fakeDir, 'fake-wechat.json');
    await until('the fake WeChat to start', () => {
      if (fake.exitCode !== null) throw new Error('fake-wechat exited: see fake-wechat.log');
      return fs.existsSync(stateFile) && fs.statSync(stateFile).size > 0;
    });
    this.fakeUrl = /^url=(.*)$/m.exec(
      fs.readFileSync(path.join(this.outDir, 'fake-wechat.log'), 'utf8'))[1];

    const dataDir = this.tempDir('scrm-browser-gw-');
    const gateway = this.start('gateway', this.bins.gateway,
      ['--config', this.configPath, '--listen', `127.0.0.1:${this.port}`], {
        SCRM_MASTER_KEY: this.masterKey,
        SCRM_WECHAT_API_BASE_URL: this.fakeUrl,
        SCRM_SPOOL_DIR: path.join(dataDir, 'spool'),
        SCRM_MEDIA_DIR: path.join(dataDir, 'media'),
        SCRM_WORKER_CLINICS: String(this.clinicId),
        SCRM_WORKER_ACCOUNTS: String(this.accountId),
      });
    await until('the gateway to be ready', async () => {
      if (gateway.exitCode !== null) throw new Error('the gateway exited: see gateway.log');
      return (await rawGet(this.port, '/readyz')).status === 200;
    }, 30000);

    const { chromium } = await import('playwright-core').catch(() => {
      throw new Error('playwright-core is missing: run scripts/setup (npm ci in tests/browser)');
    });
    this.browser = await chromium.launch({
      executablePath: this.chromiumPath,
      headless: true,
      // As root Chromium needs --no-sandbox; the rest keep it from calling home.
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--disable-default-apps', '--disable-extensions', '--no-first-run',
        '--disable-domain-reliability', '--disable-client-side-phishing-detection',
        '--metrics-recording-only', '--no-default-browser-check'],
    });
  }

  url(p) {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  // A fresh browser context (its own cookies) and page that records script errors.
  async newPage(options = {}) {
    const context = await this.browser.newContext({ locale: 'zh-CN', acceptDownloads: true,
      viewport: { width: 1200, height: 900 }, ...options });
    return watched(await context.newPage());
  }

  shot(page, name) {
    return page.screenshot({ path: path.join(this.outDir, `${name}.png`), fullPage: true });
  }

  async stop() {
    if (this.browser) await this.browser.close();
    for (const c of this.children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await Promise.race([c.exitedEarly, sleep(15000)]);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }
    for (const d of this.tempDirs) fs.rmSync(d, { recursive: true, force: true });
  }
}
