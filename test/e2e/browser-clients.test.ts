import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CLIENT_BUNDLE = readFileSync(path.resolve(import.meta.dirname, '../../node_modules/socket.io-client/dist/socket.io.min.js'), 'utf8');

/** What the page reports for one connection attempt. */
interface Outcome {
  connected: boolean;
  transport?: string;
  message?: string;
  code?: string;
  rc?: number;
}

/**
 * The stock socket.io-client bundle in headless Chromium, from a cross-origin page, with default
 * options (polling, then the upgrade) and WebSocket only: it connects, and every refusal path shows
 * its code in the browser.
 */
describe.each(TRANSPORTS)('socket.io-client in Chromium against %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  let token: string;
  let browser: Browser;
  let page: Page;
  /** The page's own server: another origin than roomcast (localhost vs 127.0.0.1, another port), as a customer's web app. */
  let site: http.Server;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is required at ${CHROMIUM} (Debian package 'chromium'; .ci/run installs it)`);
    t = await startTestServer(transport);
    app = await t.createApp('browser');
    token = await t.createUser(app, 'wendy');
    await t.createUser(app, 'xavier');
    await admin(t.base, app).post('/rooms', { _id: 'web', members: ['wendy', 'xavier'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    site = http.createServer((req, res) => {
      if (req.url === '/socket.io.min.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(CLIENT_BUNDLE);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client</title><script src="/socket.io.min.js"></script>');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    page = await browser.newPage();
    await page.goto(`http://localhost:${(site.address() as AddressInfo).port}/`);
    await page.evaluate(() => {
      // One attempt: resolves with how it connected (after any upgrade settles) or why it was refused.
      (window as any).attempt = (base: string, opts: Record<string, unknown>, settleMs: number) =>
        new Promise((resolve) => {
          const s = (window as any).io(base, { forceNew: true, reconnection: false, ...opts });
          (window as any).last = s;
          s.on('connect', () => setTimeout(() => resolve({ connected: true, transport: s.io.engine.transport.name }), settleMs));
          s.on('connect_error', (e: any) => {
            resolve({ connected: false, message: e.message, code: e.data?.error?.code, rc: e.data?.RC });
            s.disconnect();
          });
        });
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    site?.close();
    await t?.close();
  });

  const attempt = (opts: Record<string, unknown>, settleMs = 0): Promise<Outcome> =>
    page.evaluate(([base, o, ms]) => (window as any).attempt(base, o, ms), [t.base, opts, settleMs] as const);

  it('connects with default options, upgrades to WebSocket, and hears a message sent over REST', async () => {
    const result = page.evaluate(
      ([base, auth]) =>
        new Promise<{ firstTransport: string; transport: string; message: string }>((resolve, reject) => {
          const s = (window as any).io(base, { forceNew: true, reconnection: false, auth });
          let firstTransport = '';
          s.io.on('open', () => {
            firstTransport = s.io.engine.transport.name;
            s.io.engine.on('upgrade', () => ((window as any).upgraded = true));
          });
          s.on('connect', () => ((window as any).connected = true));
          s.on('connect_error', (e: any) => reject(new Error(e.message)));
          s.on('chat message', (m: any) => resolve({ firstTransport, transport: s.io.engine.transport.name, message: m.message }));
        }),
      [t.base, { clientKey: app.clientKey, token }] as const,
    );
    await page.waitForFunction(() => (window as any).connected === true && (window as any).upgraded === true);
    const sent = await user(t.base, app, token).post('/rooms/web/message', { message: 'hello browser' });
    expect(sent.status).toBe(200);
    expect(await result).toEqual({ firstTransport: 'polling', transport: 'websocket', message: 'hello browser' });
  });

  it('connects polling-only and WebSocket-only', async () => {
    expect(await attempt({ transports: ['polling'], auth: { clientKey: app.clientKey, token } }, 100)).toEqual({ connected: true, transport: 'polling' });
    expect(await attempt({ transports: ['websocket'], auth: { clientKey: app.clientKey, token } })).toEqual({ connected: true, transport: 'websocket' });
  });

  it('every refusal path shows its code in the browser', async () => {
    const bad = { clientKey: app.clientKey, token: 'not-a-token' };
    const cases: [string, Record<string, unknown>][] = [
      ['query, default transports', { query: bad }],
      ['query, WebSocket only', { query: bad, transports: ['websocket'] }],
      ['CONNECT auth, default transports', { auth: bad }],
      ['CONNECT auth, WebSocket only', { auth: bad, transports: ['websocket'] }],
      // Browsers can set headers only on polling requests (XHR), so headers ride the default transports.
      ['headers, default transports', { extraHeaders: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': 'not-a-token' } }],
    ];
    for (const [path, opts] of cases) {
      expect(await attempt(opts), path).toEqual({ connected: false, message: 'INVALID_TOKEN', code: 'INVALID_TOKEN', rc: 401 });
    }
    expect(await attempt({ auth: { clientKey: 'garbage', token } })).toEqual({ connected: false, message: 'INVALID_CLIENT_KEY', code: 'INVALID_CLIENT_KEY', rc: 401 });
    // auth2 (in-band, as the IMKIT SDKs do it): an error ack and an `error` event, both with the envelope.
    const inBand = await page.evaluate(
      ([base, clientKey]) =>
        new Promise<{ ack: any; event: any }>((resolve) => {
          const s = (window as any).io(base, { forceNew: true, reconnection: false });
          s.on('connect', () => {
            let event: any;
            s.once('error', (e: any) => (event = e));
            s.emit('auth2', 'not-a-token', { 'IM-CLIENT-KEY': clientKey }, (ack: any) => setTimeout(() => resolve({ ack, event }), 100));
          });
        }),
      [t.base, app.clientKey] as const,
    );
    expect(inBand.ack).toMatchObject({ RC: 401, error: { code: 'INVALID_TOKEN' } });
    expect(inBand.event).toMatchObject({ RC: 401, error: { code: 'INVALID_TOKEN' } });
    // Engine.IO's own refusals are readable cross-origin too (CORS on the error).
    const unknown = await page.evaluate(async (base) => {
      const res = await fetch(`${base}/socket.io/?EIO=4&transport=polling&sid=nope`);
      return { status: res.status, body: await res.json() };
    }, t.base);
    expect(unknown).toEqual({ status: 400, body: { code: 1, message: 'Session ID unknown' } });
  });
});
