// The administration pages (/admin/) in a real browser: Debian's chromium driven by
// playwright-core, against the gateway and the fake WeChat (harness.mjs). Issue 6's scenarios:
// (a) the admin changes the after-hours text and the working hours in the page, and a fan writing
//     now gets the new text as the gateway's passive reply (polled: routing caches settings ~5 s);
// (b) a patient answers an evaluation link (made with `scrm-admin evaluation invite`, the function
//     the "visit finished" event calls); the admin sees it in the list and the chart, replies, and
//     downloads both exports (the .xlsx read back with /usr/bin/python3 + openpyxl);
// (c) the used link cannot be submitted again: the page shows the refusal.
// (d) template settings (a refused keyword, then saved), an API key shown once and revoked, a
//     snippet group with a snippet.
// Also: a non-admin is told the pages are for admins; server validation errors are shown.
//
//   node tests/browser/admin.test.mjs --gateway build/bin/scrm-gateway \
//     --admin build/bin/scrm-admin --fake build/bin/fake-wechat --out build/browser-output/admin
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { arg, run, until, hex, openid, rawGet, watched, World } from './harness.mjs';

const world = new World({
  bins: { gateway: arg('gateway'), admin: arg('admin'), fake: arg('fake') },
  outDir: arg('out'),
  clinicPrefix: '管理后台测试诊所',
});
const admin = { name: `管理员${world.sfx}`, password: `pw-${hex(8)}` };
const staff = { name: `客服${world.sfx}`, password: `pw-${hex(8)}` };
const defaults = ['服务态度', '专业水平', '环境卫生', '等候时间'];

async function signIn(who) {
  const page = await world.newPage();
  await page.goto(world.url('/admin/'));
  await page.getByTestId('signin-clinic').fill(world.clinic);
  await page.getByTestId('signin-name').fill(who.name);
  await page.getByTestId('signin-password').fill(who.password);
  await page.getByTestId('signin-submit').click();
  return page;
}

// "HH:00" `hours` after the current hour in UTC+08:00.
function hourFromNow(hours) {
  const h = (new Date().getUTCHours() + 8 + hours) % 24;
  return `${String(h).padStart(2, '0')}:00`;
}

async function download(page, testid) {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testid).click()]);
  const target = path.join(world.outDir, file.suggestedFilename());
  await file.saveAs(target);
  return target;
}

test('the administration pages', async (t) => {
  try {
    await world.up();
    await world.admin(['agent', 'add', '--clinic', world.clinic, '--name', admin.name, '--role',
      'admin', '--no-consultation'], { SCRM_AGENT_PASSWORD: admin.password });
    await world.admin(['agent', 'add', '--clinic', world.clinic, '--name', staff.name, '--role',
      'service'], { SCRM_AGENT_PASSWORD: staff.password });
    // Always open, nobody online: a fan's message gets the no-agent reply until the admin acts.
    await world.admin(['routing', 'set', '--clinic', world.clinic, '--exclusive-mode', 'off',
      '--consultant-mode', 'off', '--auto-reply', 'on', '--hours', '[]', '--utc-offset', '+08:00']);

    await t.test('the pages are served at /admin/ with the console\'s rules', async () => {
      const index = await rawGet(world.port, '/admin/');
      assert.equal(index.status, 200);
      assert.match(index.headers['content-security-policy'], /default-src 'self'/);
      assert.match(index.body, /诊所管理后台/);
      const js = await rawGet(world.port, '/admin/js/main.js');
      assert.match(js.headers['content-type'], /^text\/javascript/);
      assert.equal((await rawGet(world.port, '/admin')).headers.location, '/admin/');
      assert.equal((await rawGet(world.port, '/admin/nope.js')).status, 404);
      assert.equal((await rawGet(world.port, '/admin/../console/')).status, 400);
    });

    await t.test('an agent who is not an admin is told so', async () => {
      const page = await signIn(staff);
      await page.getByTestId('not-admin').filter({ hasText: '仅管理员可以使用管理后台' }).waitFor();
      assert.ok(await page.locator('#app-view').isHidden());
      await world.shot(page, 'admin-01-not-admin');
      assert.deepEqual(page.errors, []);
      await page.context().close();
    });

    const page = await signIn(admin);
    await page.getByTestId('health-account').filter({ hasText: world.appid }).waitFor();
    await world.shot(page, 'admin-02-home');

    await t.test('(a) the after-hours text and working hours changed in the page reach the next fan', async () => {
      const newText = `本诊所现在休息，明早九点为您服务 ${hex(3)}`;
      const before = await world.deliverText(openid(), '在吗？');
      assert.equal(before.answered, true, JSON.stringify(before));
      assert.notEqual(before.reply.content, newText);

      await page.getByTestId('nav-routing').click();
      const form = page.getByTestId('routing-form');
      await form.waitFor();
      await page.getByTestId('after_hours_text').fill(newText);
      await page.getByTestId('after_hours_enabled').check();
      await page.getByTestId('auto_reply_enabled').check();
      await page.getByTestId('utc_offset').fill('+08:00');
      // Two windows (a split shift), neither holding the present hour; all seven days.
      const windows = [[hourFromNow(2), hourFromNow(3)], [hourFromNow(5), hourFromNow(6)]];
      for (const [start, end] of windows) {
        await page.getByTestId('window-add').click();
        const row = page.getByTestId('work-window').last();
        for (let d = 1; d <= 7; d += 1) await row.getByTestId(`weekday-${d}`).check();
        await row.getByTestId('window-start').fill(start);
        await row.getByTestId('window-end').fill(end);
      }
      // The server's validation errors are shown, and nothing is saved.
      const first = page.getByTestId('work-window').first();
      await first.getByTestId('window-start').fill('25:00');
      await page.getByTestId('routing-save').click();
      await page.getByTestId('routing-status').filter({ hasText: 'work_hours[0].start' }).waitFor();
      await world.shot(page, 'admin-03-routing-error');
      const unchanged = await page.evaluate(async () => (await (await fetch('/api/admin/routing')).json()).routing);
      assert.deepEqual(unchanged.work_hours, []);

      await first.getByTestId('window-start').fill(windows[0][0]);
      await page.getByTestId('routing-save').click();
      await page.getByTestId('routing-status').filter({ hasText: '已保存' }).waitFor();
      await world.shot(page, 'admin-04-routing-saved');
      const saved = await page.evaluate(async () => (await (await fetch('/api/admin/routing')).json()).routing);
      assert.equal(saved.after_hours_text, newText);
      assert.equal(saved.work_hours.length, 2);
      assert.deepEqual(saved.work_hours, windows.map(([start, end]) =>
        ({ weekdays: [1, 2, 3, 4, 5, 6, 7], start, end })));

      // Each fan new (an auto-reply suppresses the next for that fan); routing picks the change up
      // within its cache bound.
      const reply = await until('a fan to get the new after-hours text', async () => {
        const d = await world.deliverText(openid(), '请问现在可以预约吗？');
        return d.reply.content === newText ? d.reply : null;
      }, 30000, 1000);
      assert.equal(reply.kind, 'encrypted');
    });

    await t.test('(b) and (c) a patient evaluates; the admin sees it, replies and exports it', async () => {
      const fan = openid();
      const visit = `V-${world.sfx}`;
      const comment = `医生很耐心，就是等候时间有点长 ${hex(2)}`;
      const out = await world.admin(['evaluation', 'invite', '--appid', world.appid, '--openid', fan,
        '--visit', visit]);
      const link = /(\/eval\/\S+)/.exec(out)[1];

      // Two tabs open the link; the first submits, the second is then refused.
      const patient = await world.newPage({ viewport: { width: 390, height: 844 } });
      const second = watched(await patient.context().newPage());
      await patient.goto(world.url(link));
      await second.goto(world.url(link));
      for (const p of [patient, second]) await p.locator('#form').waitFor();
      for (const name of defaults) {
        const rating = name === '等候时间' ? 'poor' : 'good';
        await patient.locator('.item', { hasText: name }).locator(`button[data-r=${rating}]`).click();
        await second.locator('.item', { hasText: name }).locator('button[data-r=good]').click();
      }
      await patient.locator('#comment').fill(comment);
      await patient.locator('#submit').click();
      await patient.locator('#done').filter({ hasText: '感谢您的评价' }).waitFor();
      await world.shot(patient, 'admin-05-patient-submitted');

      await second.locator('#submit').click();
      await second.locator('#msg').filter({ hasText: '您已提交过本次评价，不能重复提交' }).waitFor();
      assert.equal(await second.locator('#submit').isDisabled(), true);
      await world.shot(second, 'admin-06-patient-refused');
      await second.reload();
      await second.locator('#done').filter({ hasText: comment }).waitFor();
      assert.ok(await second.locator('#form').isHidden(), 'no form on a used link');

      await page.getByTestId('nav-evaluations').click();
      await page.getByTestId('filter-rating').selectOption('poor');
      const card = page.getByTestId('evaluation').filter({ hasText: visit });
      await card.waitFor();
      assert.match(await card.getByTestId('evaluation-comment').textContent(), new RegExp(comment));
      assert.match(await card.textContent(), /等候时间：差/);
      const waiting = page.locator('[data-testid=stats-bar][data-attribute=等候时间]');
      assert.equal(await waiting.locator('rect[data-rating=poor]').getAttribute('data-count'), '1');
      const attitude = page.locator('[data-testid=stats-bar][data-attribute=服务态度]');
      assert.equal(await attitude.locator('rect[data-rating=good]').getAttribute('data-count'), '1');
      assert.equal(await attitude.locator('rect[data-rating=poor]').count(), 0);
      await world.shot(page, 'admin-07-evaluations');

      const replyText = `感谢您的建议，我们会改进排号 ${hex(2)}`;
      await card.getByTestId('reply-text').fill(replyText);
      await card.getByTestId('reply-send').click();
      await page.getByTestId('evaluation').filter({ hasText: visit }).getByTestId('evaluation-reply')
        .filter({ hasText: replyText }).waitFor();
      await patient.reload();
      await patient.locator('#done .reply').filter({ hasText: replyText }).waitFor();

      const csvFile = await download(page, 'export-csv');
      const csv = fs.readFileSync(csvFile, 'utf8');
      assert.ok(csv.startsWith('\uFEFF'), 'a byte-order mark');
      const csvRow = csv.split('\r\n').find((line) => line.includes(visit));
      assert.ok(csvRow, 'the evaluation is in the CSV');
      assert.ok(csvRow.includes(comment) && csvRow.includes(replyText) && csvRow.includes('差'), csvRow);

      const xlsxFile = await download(page, 'export-xlsx');
      assert.match(xlsxFile, /\.xlsx$/);
      const { stdout } = await run('/usr/bin/python3', ['-c', [
        'import json, sys, openpyxl',
        'ws = openpyxl.load_workbook(sys.argv[1]).active',
        'print(json.dumps({"title": ws.title, "rows": [[c for c in r] for r in ws.iter_rows(values_only=True)]}, ensure_ascii=False))',
      ].join('\n'), xlsxFile]);
      const sheet = JSON.parse(stdout);
      assert.equal(sheet.title, '服务评价');
      const header = sheet.rows[0];
      const row = sheet.rows.find((r) => r.includes(visit));
      assert.ok(row, 'the evaluation is in the .xlsx');
      assert.equal(row[header.indexOf('等候时间')], '差');
      assert.equal(row[header.indexOf('服务态度')], '好');
      assert.equal(row[header.indexOf('留言')], comment);
      assert.equal(row[header.indexOf('回复')], replyText);
      assert.deepEqual(patient.errors, []);
      assert.deepEqual(second.errors, []);
    });

    await t.test('(d) template settings, API keys and snippet groups are managed in the page', async () => {
      const getJson = (p) => page.evaluate(async (u) => (await fetch(u)).json(), p);
      const templateId = `tmpl-wait-${hex(4)}`;
      await page.getByTestId('nav-templates').click();
      const kind = page.locator('[data-testid=template][data-kind=reply_waiting]');
      await kind.getByTestId('template-summary').click();
      await kind.getByTestId('template-id').fill(templateId);
      await kind.getByTestId('keyword-add').click();
      await kind.getByTestId('keyword-name').last().fill('first');
      await kind.getByTestId('keyword-value').last().fill('{{agent_name}} 已回复');
      await kind.getByTestId('template-enabled').check();
      // A refused setting: the server's problem is shown next to the form, nothing is stored.
      await kind.getByTestId('template-save').click();
      await kind.getByTestId('template-status').filter({ hasText: '不再显示first' }).waitFor();
      await world.shot(page, 'admin-08-template-refused');
      const refused = (await getJson('/api/admin/templates')).templates.find((x) => x.kind === 'reply_waiting');
      assert.equal(refused.configured, false);

      await kind.getByTestId('keyword-name').last().fill('time2');
      await kind.getByTestId('keyword-value').last().fill('{{reply_time}}');
      await kind.getByTestId('template-save').click();
      await kind.getByTestId('template-status').filter({ hasText: '已保存' }).waitFor();
      await kind.getByTestId('template-state').filter({ hasText: '已启用' }).waitFor();
      const saved = (await getJson('/api/admin/templates')).templates.find((x) => x.kind === 'reply_waiting');
      assert.equal(saved.template_id, templateId);
      assert.deepEqual(saved.keywords, [{ keyword: 'time2', value: '{{reply_time}}' }]);
      assert.equal(saved.enabled, true);
      // A reload shows the stored setting.
      await page.reload();
      const again = page.locator('[data-testid=template][data-kind=reply_waiting]');
      await again.getByTestId('template-summary').click();
      assert.equal(await again.getByTestId('template-id').inputValue(), templateId);
      assert.equal(await again.getByTestId('keyword-value').inputValue(), '{{reply_time}}');
      await world.shot(page, 'admin-09-template-saved');

      // An API key: shown once, the list has its prefix; revoked after a confirmation.
      const keyName = `PMS ${hex(3)}`;
      await page.getByTestId('new-api-key-name').fill(keyName);
      await page.getByTestId('new-api-key').locator('button[type=submit]').click();
      const shown = page.locator('pre[data-testid=new-api-key]');
      await shown.waitFor();
      const key = await shown.textContent();
      assert.match(key, /^sk_[0-9a-f]{64}$/);
      await page.getByTestId('new-api-key-box').filter({ hasText: '只显示一次，请立即保存' }).waitFor();
      const row = page.locator(`[data-testid=api-key-row][data-name="${keyName}"]`);
      await row.getByTestId('api-key-prefix').filter({ hasText: key.slice(0, 10) }).waitFor();
      assert.equal(await row.getByTestId('api-key-state').textContent(), '有效');
      await world.shot(page, 'admin-10-api-key-created');
      page.once('dialog', (d) => d.accept());
      await row.getByTestId('api-key-revoke').click();
      await row.getByTestId('api-key-state').filter({ hasText: '已停用' }).waitFor();
      const listed = (await getJson('/api/admin/api-keys')).api_keys.find((k) => k.name === keyName);
      assert.equal(listed.active, false);
      assert.ok(!JSON.stringify(listed).includes(key.slice(12)), 'the key is never listed');
      await page.reload();
      await page.locator(`[data-testid=api-key-row][data-name="${keyName}"]`).waitFor();
      assert.equal(await page.locator('pre[data-testid=new-api-key]').count(), 0, 'the key is shown once');
      await world.shot(page, 'admin-11-api-key-revoked');

      // A snippet group with a snippet, still there after a reload; a duplicate name is refused.
      const groupName = `预约 ${hex(2)}`;
      const snippet = `您好，请问想预约哪一天？ ${hex(2)}`;
      await page.getByTestId('new-snippet-group-name').fill(groupName);
      await page.getByTestId('new-snippet-group').locator('button[type=submit]').click();
      const group = page.locator(`[data-testid=snippet-group][data-name="${groupName}"]`);
      await group.getByTestId('new-snippet-text').fill(snippet);
      await group.getByTestId('new-snippet-add').click();
      await page.getByTestId('snippets-status').filter({ hasText: '快捷回复已添加' }).waitFor();
      await page.getByTestId('new-snippet-group-name').fill(groupName);
      await page.getByTestId('new-snippet-group').locator('button[type=submit]').click();
      await page.getByTestId('snippets-status').filter({ hasText: '本诊所已有同名的快捷回复分组' }).waitFor();
      await page.reload();
      const reloaded = page.locator(`[data-testid=snippet-group][data-name="${groupName}"]`);
      assert.equal(await reloaded.getByTestId('snippet-text').inputValue(), snippet);
      const groups = (await getJson('/api/admin/snippet-groups')).groups.filter((g) => g.name === groupName);
      assert.equal(groups.length, 1);
      assert.deepEqual(groups[0].snippets.map((x) => x.text), [snippet]);
      await world.shot(page, 'admin-12-snippet-groups');

      // Edited in place, then the group deleted after a confirmation.
      const edited = `${snippet}（已修改）`;
      await reloaded.getByTestId('snippet-text').fill(edited);
      await reloaded.getByTestId('snippet-save').click();
      await reloaded.getByTestId('snippet-group-status').filter({ hasText: '快捷回复已保存' }).waitFor();
      const afterEdit = (await getJson('/api/admin/snippet-groups')).groups.find((g) => g.name === groupName);
      assert.deepEqual(afterEdit.snippets.map((x) => x.text), [edited]);
      page.once('dialog', (d) => d.accept());
      await reloaded.getByTestId('snippet-group-delete').click();
      await page.getByTestId('snippets-status').filter({ hasText: '已删除' }).waitFor();
      assert.equal(await reloaded.count(), 0);
      const afterDelete = (await getJson('/api/admin/snippet-groups')).groups;
      assert.ok(!afterDelete.some((g) => g.name === groupName), 'the group is gone');
    });

    await t.test('(e) the template send log finds an event of the clinic\'s system by patient', async () => {
      // A fan bound to a patient, an API key, and an event of a kind the clinic never set: logged
      // as not sent.
      const fan = openid();
      const name = `日志患者${hex(2)}`;
      const recordNo = `R-${hex(4)}`;
      await world.deliverText(fan, '你好');
      const call = (method, url, body, headers = {}) => page.evaluate(async ([m, u, b, hd]) => {
        const r = await fetch(u, { method: m, headers: { 'Content-Type': 'application/json', ...hd },
          body: b === undefined ? undefined : JSON.stringify(b) });
        return { status: r.status, body: await r.json() };
      }, [method, url, body, headers]);
      await until('the fan to be bound to a patient', async () => (await call('POST',
        `/api/conversations/${world.accountId}/${fan}/bind-patient`,
        { name, record_no: recordNo })).status === 200);
      const created = await call('POST', '/api/admin/api-keys', { name: `log ${hex(3)}` });
      assert.equal(created.status, 201);
      const event = await call('POST', '/api/integration/events', {
        kind: 'points_changed', idempotency_key: `points-${hex(6)}`, patient: { record_no: recordNo },
        data: { points_change: '+20', points_balance: '120' },
      }, { Authorization: `Bearer ${created.body.key}` });
      assert.ok(event.status === 200 || event.status === 202, JSON.stringify(event));

      await page.getByTestId('nav-templates').click();
      const log = page.getByTestId('template-log');
      await log.getByTestId('log-patient').fill(name);
      await log.getByTestId('log-kind').selectOption('points_changed');
      await log.locator('button[type=submit]').click();
      const entry = log.getByTestId('log-entry').filter({ hasText: name });
      await entry.waitFor();
      assert.equal(await log.getByTestId('log-entry').count(), 1);
      assert.equal(await entry.getByTestId('log-state').textContent(), '未发送（已关闭）');
      assert.ok((await entry.textContent()).includes('积分变动提醒'), 'the kind is named');
      await world.shot(page, 'admin-13-template-log');
      // Another kind finds nothing for that patient.
      await log.getByTestId('log-kind').selectOption('electronic_bill');
      await log.locator('button[type=submit]').click();
      await log.getByTestId('log-status').filter({ hasText: '没有符合条件的记录' }).waitFor();
      assert.equal(await log.getByTestId('log-entry').count(), 0);
    });

    await t.test('the admin pages ran without script errors', () => {
      assert.deepEqual(page.errors, []);
    });
  } finally {
    await world.stop();
  }
});
