import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpReceiver } from '../helpers/receivers.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { until } from '../helpers/sockets.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The dashboard's deliveries table shows the outbox as /admin/deliveries reports it. */
describe('the dashboard lists webhook and push deliveries', () => {
  let t: TestServer;
  let app: TestApp;
  let browser: Browser;
  const receiver = new HttpReceiver();

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is required at ${CHROMIUM} (Debian package 'chromium'; .ci/run installs it)`);
    await receiver.start();
    receiver.answer = (r) => (r.body?.data?.message === 'refused' ? { status: 500 } : { status: 200, body: {} });
    t = await startTestServer(TRANSPORTS[0]!, { outboxPollMs: 20, outboxMaxAttempts: 1 });
    app = await t.createApp('dash');
    const alice = await t.createUser(app, 'alice');
    await admin(t.base, app).post('/rooms', { _id: 'lobby', members: ['alice'], webhook: receiver.url });
    await admin(t.base, app).get('/admin/delivery');
    for (const message of ['fine', 'refused']) await user(t.base, app, alice).post('/rooms/lobby/message', { message });
    await until(async () => ((await admin(t.base, app).get('/admin/deliveries')).body.result.data as any[]).filter((d) => d.status !== 'pending').length === 2);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver.stop();
  });

  it('shows each delivery with its status, attempts and last error', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.base}/dashboard`);
    await page.fill('#apikey', app.apiKey);
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#deliveries tbody tr').length === 2 && document.querySelector('#deliveries td.dead') !== null);
    const rows = await page.$$eval('#deliveries tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent)));
    expect(rows).toContainEqual(['webhook', 'MESSAGE in lobby', 'dead', '1', 'webhook answered HTTP 500']);
    expect(rows).toContainEqual(['webhook', 'MESSAGE in lobby', 'delivered', '1', '']);
  });
});
