import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS } from '../helpers/server.js';
import { until } from '../helpers/sockets.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The stock browser build of socket.io-client (the package's exports hide dist/, so resolve its root). */
const SOCKET_IO_BROWSER = path.join(path.dirname(createRequire(import.meta.url).resolve('socket.io-client/package.json')), 'dist/socket.io.min.js');

/**
 * A media message between two real browsers: the sender draws an image, uploads it the way the
 * Flutter SDK does (one `file` part typed application/octet-stream, no `extra`, so no room),
 * sends an image message with the Vue SDK's body (`images: [{originalUrl, …}]`, no `message`);
 * the receiver, on the stock socket.io browser client, gets the message and renders the image
 * the way the Vue SDK does (`?signedUrlOnly=true` with its headers, then `<img src>` without).
 */
describe('a media message in real browsers', () => {
  let t: TestServer;
  let app: TestApp;
  let browser: Browser;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is required at ${CHROMIUM} (Debian package 'chromium'; .ci/run installs it)`);
    t = await startTestServer(TRANSPORTS[0]!, { filesDir: mkdtempSync(path.join(tmpdir(), 'roomcast-e2e-media-')) });
    app = await t.createApp('media');
    for (const id of ['alice', 'bob']) tokens[id] = await t.createUser(app, id);
    await admin(t.base, app).post('/rooms', { _id: 'pics', members: ['alice', 'bob'] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** A page on the server's origin with the given user's credentials in `window.im`. */
  async function pageFor(who: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${t.base}/healthz`);
    await page.evaluate((im) => Object.assign(window, { im }), { base: t.base, clientKey: app.clientKey, token: tokens[who]! });
    return page;
  }

  it('upload, send, and render on the peer', async () => {
    const bob = await pageFor('bob');
    await bob.addScriptTag({ path: SOCKET_IO_BROWSER });
    // The receiver: Vue-style socket (auth2 without ack), renders image messages.
    await bob.evaluate(() => {
      const { base, clientKey, token } = (window as any).im;
      const socket = (window as any).io(base, { transports: ['websocket'] });
      (window as any).received = [];
      socket.on('connect', () => socket.emit('auth2', token, { CLIENT_KEY: clientKey, Authorization: token }));
      socket.on('chat message', async (m: any) => {
        (window as any).received.push(m);
        if (m.messageType !== 'image') return;
        const res = await fetch(`${m.images[0].originalUrl}?signedUrlOnly=true`, { headers: { 'IM-CLIENT-KEY': clientKey, 'IM-Authorization': token } });
        const { result } = await res.json();
        const img = document.createElement('img');
        img.className = 'received';
        img.src = result.url; // no headers, no cookies: the signed link alone
        document.body.append(img);
      });
    });
    // Bob's socket is authenticated (and subscribed) before Alice sends.
    await until(() => t.server.gateway.connectionCount(app.appId) === 1);

    const alice = await pageFor('alice');
    const sent = await alice.evaluate(async () => {
      const { base, clientKey, token } = (window as any).im;
      const headers = { 'IM-CLIENT-KEY': clientKey, 'IM-Authorization': token };
      const canvas = document.createElement('canvas');
      canvas.width = 64;
      canvas.height = 48;
      const ctx = canvas.getContext('2d')!;
      ctx.fillStyle = '#c33';
      ctx.fillRect(0, 0, 64, 48);
      const png = await new Promise<Blob>((resolve) => canvas.toBlob((b) => resolve(b!), 'image/png'));
      // Flutter's upload: one part, application/octet-stream, no extra.
      const form = new FormData();
      form.append('file', new Blob([await png.arrayBuffer()], { type: 'application/octet-stream' }), 'image_picker.png');
      const up = await (await fetch(`${base}/files/chatserver-upload`, { method: 'POST', headers, body: form })).json();
      // The Vue SDK builds the URL itself from the domain and result._id.
      const url = `${base}/files/chatserver-upload/${up.result._id}`;
      const body = { roomId: 'pics', messageType: 'image', images: [{ originalUrl: url, thumbnailUrl: url, width: 64, height: 48 }] };
      const res = await fetch(`${base}/rooms/pics/message`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { upload: up.result, status: res.status, message: (await res.json()).result };
    });
    expect(sent.upload).toMatchObject({ mimetype: 'image/png', client: 'alice', extra: {} });
    expect(sent.status).toBe(200);
    expect(sent.message).toMatchObject({ messageType: 'image', images: [{ width: 64, height: 48 }] });
    expect(sent.message.message).toBeUndefined();

    // The peer's browser decoded the picture: it loaded through the signed link.
    await bob.waitForFunction(() => {
      const img = document.querySelector('img.received') as HTMLImageElement | null;
      return img !== null && img.complete && img.naturalWidth === 64 && img.naturalHeight === 48;
    }, undefined, { timeout: 15_000 });
    const pixel = await bob.evaluate(() => {
      const img = document.querySelector('img.received') as HTMLImageElement;
      const c = document.createElement('canvas');
      c.width = 64;
      c.height = 48;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      return Array.from(ctx.getImageData(10, 10, 1, 1).data);
    });
    expect(pixel).toEqual([0xcc, 0x33, 0x33, 255]);
  });
});
