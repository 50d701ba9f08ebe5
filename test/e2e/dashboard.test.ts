import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis } from '../helpers/redis.js';
import { admin, api, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once } from '../helpers/sockets.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve(import.meta.dirname, '../../test-results');
/** A name that is not localhost: the page is then plain HTTP outside a secure context, as on a LAN address. */
const HOST = 'roomcast-dashboard.test';

describe('the dashboard in a real browser', () => {
  let t: TestServer;
  let app: TestApp;
  let browser: Browser;
  let base: string;
  const sockets: ReturnType<typeof connect>[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is required at ${CHROMIUM} (Debian package 'chromium'; .ci/run installs it)`);
    }
    t = await startTestServer(TRANSPORTS[0]!, { usageFlushMs: 200 });
    base = t.base.replace('127.0.0.1', HOST);
    app = await t.createApp('dashboard');
    const alice = await t.createUser(app, 'alice');
    const bob = await t.createUser(app, 'bob');
    await admin(t.base, app).post('/rooms', { _id: 'lobby', members: ['alice', 'bob'] });
    // Real traffic for the charts: two live sockets, three messages, 21 refused handshakes (an alert).
    for (const token of [alice, bob]) {
      const s = connect(t.base, { auth: { clientKey: app.clientKey, token } });
      await once(s, 'connect');
      sockets.push(s);
    }
    for (const m of ['one', 'two', 'three']) await user(t.base, app, alice).post('/rooms/lobby/message', { message: m });
    await Promise.all(
      Array.from({ length: 21 }, async (_, i) => {
        const s = connect(t.base, { auth: { clientKey: app.clientKey, token: `bad-${i}` } });
        await once(s, 'connect_error');
        s.disconnect();
      }),
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
      ],
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await browser?.close();
    await t?.close();
  });

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${base}/dashboard`);
    await page.fill('#apikey', app.apiKey);
    await page.press('#apikey', 'Enter');
    await page.waitForSelector('#overview:not([hidden])');
    await page.waitForFunction(() => document.body.dataset.refreshed !== undefined);
  }

  /** Hovers every non-zero point of a chart and returns the tooltip texts. */
  async function tooltips(page: Page, chart: string): Promise<string[]> {
    const points: { x: number; y: number }[] = await page.evaluate((id) => {
      const over = document.querySelector(`#${id} .u-over`)!.getBoundingClientRect();
      return (window as any).chartPoints(id).map((p: { left: number; top: number }) => ({ x: over.left + p.left, y: over.top + p.top }));
    }, chart);
    const texts: string[] = [];
    for (const p of points) {
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector(`#${chart} .tip:not([hidden])`);
      texts.push((await page.textContent(`#${chart} .tip`))!);
    }
    return texts;
  }

  it('signs in, shows real traffic in charts with tooltips, alerts, settings, users; Copy works over plain HTTP', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${base}/dashboard`);
    expect(await page.evaluate(() => window.isSecureContext)).toBe(false);

    // A wrong key is refused on the page.
    await page.fill('#apikey', 'not-the-key');
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.getElementById('signin-error')!.textContent!.includes('not valid'));
    await page.fill('#apikey', app.apiKey);
    await page.click('button[type=submit]');
    await page.waitForSelector('#overview:not([hidden])');
    expect(page.url()).not.toContain(app.apiKey);
    await page.waitForFunction(() => document.getElementById('conn-now')!.textContent === '2');
    await page.waitForFunction(() => Number(document.getElementById('chart-messages')!.dataset.sum) >= 3, undefined, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.getElementById('chart-refused')!.dataset.sum) >= 21);
    expect(await page.textContent('#msg-hour')).toBe('3');
    expect(await page.textContent('#refused-hour')).toBe('21');
    expect(await page.textContent('#window-label')).toMatch(/^Last 60 minutes \(\d\d?:\d\d( [AP]M)?–\d\d?:\d\d( [AP]M)?\), per minute; times in .+\./);

    // The tooltip of the messages chart reads back the traffic this test made (3 messages, maybe across a minute boundary).
    const tips = await tooltips(page, 'chart-messages');
    const shown = tips.map((text) => Number(/— (\d+) messages$/.exec(text)![1]));
    expect(shown.reduce((a, b) => a + b, 0)).toBe(3);
    expect(tips[0]).toMatch(/^\d\d?:\d\d( [AP]M)? — \d+ messages$/);
    // The keyboard reaches it too.
    await page.focus('#chart-refused');
    await page.keyboard.press('ArrowLeft');
    await page.waitForSelector('#chart-refused .tip:not([hidden])');

    // Alerts in local time, naming their subject: the refusal codes.
    await page.waitForFunction(() => document.getElementById('alerts')!.textContent!.includes('INVALID_TOKEN ×21'));
    const alertTime = await page.getAttribute('#alerts time', 'datetime');
    expect(await page.textContent('#alerts time')).toBe(await page.evaluate((iso) => new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(iso!)), alertTime));
    mkdirSync(SHOTS, { recursive: true });
    await page.mouse.move(0, 0);
    await page.evaluate(() => (document.activeElement as HTMLElement).blur());
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-desktop.png'), fullPage: true });

    // Settings: edit the allowed origins; a bad one is refused with its reason.
    await page.click('#nav button[data-view=settings]');
    await page.waitForFunction(() => (document.getElementById('app-name') as HTMLInputElement).value === 'dashboard');
    await page.fill('#app-origins', 'not an origin');
    await page.click('#settings-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('settings-status')!.textContent!.includes('INVALID_INPUT'));
    await page.fill('#app-origins', 'https://app.example.com\nhttps://admin.example.com');
    await page.click('#settings-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('settings-status')!.textContent === 'Saved.');
    const settings = await admin(t.base, app).get('/admin/settings');
    expect(settings.body.result.allowedOrigins).toEqual(['https://app.example.com', 'https://admin.example.com']);
    // A browser elsewhere is now refused, and the alert names the origin.
    const foreign = await api(t.base, { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': await t.createUser(app, 'carol'), origin: 'https://evil.example' }).get('/me');
    expect(foreign.body.error.code).toBe('ORIGIN_NOT_ALLOWED');

    // Copy over plain HTTP on a non-localhost name (no Clipboard API there).
    await page.waitForFunction((key) => document.getElementById('client-key')!.textContent === key, app.clientKey);
    await page.click('#copy-key');
    await page.waitForFunction(() => document.getElementById('key-status')!.textContent === 'Copied.');
    const reader = await context.newPage();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.base });
    await reader.goto(`${t.base}/healthz`);
    expect(await reader.evaluate(() => navigator.clipboard.readText())).toBe(app.clientKey);
    await reader.close();
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-settings.png'), fullPage: true });

    await page.click('#nav button[data-view=overview]');
    await page.waitForFunction(() => document.getElementById('alerts')!.textContent!.includes('https://evil.example'));

    // Users: search, tokens issued, revoke.
    await page.click('#nav button[data-view=users]');
    await page.fill('#user-q', 'ALI');
    await page.press('#user-q', 'Enter');
    await page.waitForFunction(() => document.getElementById('users-status')!.textContent!.startsWith('1 user matching'));
    expect(await page.getAttribute('#users-body tr', 'data-user')).toBe('alice');
    await page.click('#users-body tr[data-user=alice] button:text("Tokens")');
    await page.waitForFunction(() => document.querySelector('#users-body .tokens li')?.textContent?.startsWith('Issued'));
    page.once('dialog', (d) => void d.accept());
    await page.click('#users-body tr[data-user=alice] button:text("Revoke all")');
    await page.waitForFunction(() => document.getElementById('users-status')!.textContent === 'Revoked 1 token of alice.');
    await page.waitForFunction(() => document.querySelector('#users-body .tokens td')?.textContent === 'No tokens.');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-users.png'), fullPage: true });

    expect(pageErrors).toEqual([]);
    await context.close();
  }, 60_000);

  it('is usable at phone width, by keyboard; revokes and regenerates the client key', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await signIn(page);
    await page.waitForFunction(() => Number(document.getElementById('chart-messages')!.dataset.sum) >= 3);
    // Nothing wider than the screen; charts fit their cards.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const chartWidth = await page.evaluate(() => document.querySelector('#chart-messages canvas')!.getBoundingClientRect().width);
    expect(chartWidth).toBeGreaterThan(250);
    expect(chartWidth).toBeLessThanOrEqual(370);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: true });

    // Keyboard: Tab reaches the navigation, Enter opens Settings.
    await page.focus('#nav button[data-view=overview]');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.view)).toBe('settings');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#settings:not([hidden])');
    await page.waitForFunction((key) => document.getElementById('client-key')!.textContent === key, app.clientKey);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-phone-settings.png'), fullPage: true });

    // Revoke (confirmed): the old key is refused by the API at once; a new one works.
    const dave = (await admin(t.base, app).post('/admin/clients', { _id: 'dave', issueAccessToken: true })).body.result.token as string;
    page.once('dialog', (d) => void d.accept());
    await page.click('#revoke-key');
    await page.waitForFunction(() => document.getElementById('key-status')!.textContent === 'Revoked.');
    expect((await user(t.base, app, dave).get('/me')).body.error.code).toBe('INVALID_CLIENT_KEY');
    await page.waitForFunction(() => !(document.getElementById('generate-key') as HTMLButtonElement).disabled);
    page.once('dialog', (d) => void d.accept());
    await page.click('#generate-key');
    await page.waitForFunction((old) => {
      const text = document.getElementById('client-key')!.textContent!;
      return text.startsWith('eyJ') && text !== old;
    }, app.clientKey);
    const newKey = (await page.textContent('#client-key'))!;
    expect((await api(t.base, { 'IM-CLIENT-KEY': newKey, 'IM-Authorization': dave }).get('/me')).status).toBe(200);
    await context.close();
  }, 60_000);
});

describe('the protocol reference in a real browser', () => {
  it('renders every route of /openapi.json at /docs, filterable by keyboard', async () => {
    const t = await startTestServer('node');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      await page.goto(`${t.base}/docs`);
      const doc = (await (await fetch(`${t.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
      const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
      await page.waitForFunction((n) => document.querySelectorAll('details').length === n, operations);
      expect(await page.textContent('#title')).toMatch(/^roomcast — IMKIT REST protocol \d+\.\d+\.\d+$/);
      await page.focus('#filter');
      await page.keyboard.type('clients token');
      const visible = await page.$$eval('details:not([hidden]) .path', (nodes) => nodes.map((n) => n.textContent));
      expect(visible).toEqual(expect.arrayContaining(['/admin/clients/{id}/token', '/admin/clients/{id}/tokens']));
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      expect(await page.$eval('details:not([hidden])', (d) => (d as HTMLDetailsElement).open)).toBe(true);
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'docs.png'), fullPage: false });
    } finally {
      await browser.close();
      await t.close();
    }
  }, 30_000);
});

describe('the dashboard during a Redis outage', () => {
  it('marks its numbers stale while the cluster store is down, and recovers', async () => {
    const redis = await startRedis({ appendonly: false });
    const schema = freshSchema();
    const t = await startTestServer(TRANSPORTS[0]!, { redisUrl: redis.url, redisPrefix: 'dash', databaseUrl: SHARED_DATABASE_URL, databaseSchema: schema, usageFlushMs: 200 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const app = await t.createApp('outage');
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${t.base}/dashboard`);
      await page.fill('#apikey', app.apiKey);
      await page.press('#apikey', 'Enter');
      await page.waitForFunction(() => document.body.dataset.stale === 'false');
      await redis.kill();
      await page.waitForSelector('#stale:not([hidden])', { timeout: 10_000 });
      expect(await page.textContent('#stale')).toMatch(/^Stale — no fresh data \(STORE_UNAVAILABLE: .+\)\. Showing data from .+\. Retrying every 2 s\.$/);
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'dashboard-stale.png'), fullPage: true });
      await redis.restart();
      await page.waitForSelector('#stale', { state: 'hidden', timeout: 15_000 });
    } finally {
      await browser.close();
      await t.close().catch(() => undefined);
      await redis.stop();
      await dropSchemas(SHARED_DATABASE_URL, [schema]);
    }
  }, 60_000);
});
