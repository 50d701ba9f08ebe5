import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, api, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once } from '../helpers/sockets.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve(import.meta.dirname, '../../test-results');

describe('the dashboard in a real browser', () => {
  let t: TestServer;
  let app: TestApp;
  let browser: Browser;
  const sockets: ReturnType<typeof connect>[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is required at ${CHROMIUM} (Debian package 'chromium'; .ci/run installs it)`);
    }
    t = await startTestServer(TRANSPORTS[0]!, { usageFlushMs: 200 });
    app = await t.createApp('dashboard');
    const alice = await t.createUser(app, 'alice');
    const bob = await t.createUser(app, 'bob');
    await admin(t.base, app).post('/rooms', { _id: 'lobby', members: ['alice', 'bob'] });
    // Real traffic for the charts: two live sockets, three messages, two refused handshakes.
    for (const token of [alice, bob]) {
      const s = connect(t.base, { auth: { clientKey: app.clientKey, token } });
      await once(s, 'connect');
      sockets.push(s);
    }
    for (const m of ['one', 'two', 'three']) await user(t.base, app, alice).post('/rooms/lobby/message', { message: m });
    for (const token of ['bad-1', 'bad-2']) {
      const s = connect(t.base, { auth: { clientKey: app.clientKey, token } });
      await once(s, 'connect_error');
      s.disconnect();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await browser?.close();
    await t?.close();
  });

  it('signs in with the API key, draws real data, copies, revokes and regenerates the client key', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.base });
    const page = await context.newPage();
    await page.goto(`${t.base}/dashboard`);

    // A wrong key is refused on the page.
    await page.fill('#apikey', 'not-the-key');
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.getElementById('signin-error')!.textContent!.includes('not valid'));

    await page.fill('#apikey', app.apiKey);
    await page.click('button[type=submit]');
    await page.waitForSelector('#overview:not([hidden])');
    expect(page.url()).not.toContain(app.apiKey);
    await page.waitForFunction(() => document.getElementById('conn-now')!.textContent === '2');
    // The charts are drawn from /admin/usage: they show the traffic this test made.
    await page.waitForFunction(() => Number(document.getElementById('chart-messages')!.dataset.sum) >= 3, undefined, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.getElementById('chart-refused')!.dataset.sum) >= 2);
    await page.waitForFunction(() => Number(document.getElementById('chart-connections')!.dataset.max) >= 2);
    expect(await page.textContent('#msg-hour')).toBe('3');
    expect(await page.textContent('#refused-hour')).toBe('2');
    // Something was really painted on the messages chart.
    const painted = await page.evaluate(() => {
      const c = document.getElementById('chart-messages') as HTMLCanvasElement;
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
      return n;
    });
    expect(painted).toBeGreaterThan(200);
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });

    // Settings: the key, copied to the clipboard.
    await page.click('#nav button[data-view=settings]');
    await page.waitForFunction((key) => document.getElementById('client-key')!.textContent === key, app.clientKey);
    await page.click('#copy-key');
    await page.waitForFunction(() => document.getElementById('key-status')!.textContent === 'Copied.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(app.clientKey);

    // Revoke (confirmed): the old key is refused by the API at once.
    const alice = await admin(t.base, app).post('/admin/clients', { _id: 'alice', issueAccessToken: true });
    const token = alice.body.result.token as string;
    expect((await user(t.base, app, token).get('/me')).status).toBe(200);
    page.once('dialog', (d) => void d.accept());
    await page.click('#revoke-key');
    await page.waitForFunction(() => document.getElementById('key-status')!.textContent === 'Revoked.');
    const refused = await user(t.base, app, token).get('/me');
    expect(refused.body.error.code).toBe('INVALID_CLIENT_KEY');
    await page.waitForFunction(() => !(document.getElementById('generate-key') as HTMLButtonElement).disabled);

    // Generate (confirmed): a new key, shown, that works; the old one stays refused.
    page.once('dialog', (d) => void d.accept());
    await page.click('#generate-key');
    await page.waitForFunction((old) => {
      const text = document.getElementById('client-key')!.textContent!;
      return text.startsWith('eyJ') && text !== old;
    }, app.clientKey);
    const newKey = (await page.textContent('#client-key'))!;
    expect((await api(t.base, { 'IM-CLIENT-KEY': newKey, 'IM-Authorization': token }).get('/me')).status).toBe(200);
    expect((await user(t.base, app, token).get('/me')).body.error.code).toBe('INVALID_CLIENT_KEY');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-settings.png'), fullPage: true });
    await context.close();
  }, 60_000);
});
