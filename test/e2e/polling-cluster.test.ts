import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHaproxy, startNginx, startNode, type Balancer, type NodeProcess } from '../helpers/cluster.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, api, OPERATOR_SECRET, type TestApp, user } from '../helpers/server.js';
import { connect, once, sleep, until } from '../helpers/sockets.js';

/**
 * Long-polling in cluster mode: a polling session lives on one node, so every request of it must
 * reach that node. Three compiled nodes (PostgreSQL for data, Redis for the bus), behind two real HAProxies: one with sticky
 * sessions (an inserted SERVERID cookie, as deploy/haproxy.cfg), one plain round-robin. The
 * stock socket.io-client with default options (polling, then the upgrade) connects through the
 * sticky one; through the plain one polling sessions break while WebSocket-only clients are fine.
 */
describe('long-polling across a three-node cluster', () => {
  let redis: RedisProcess;
  let nodes: NodeProcess[] = [];
  let sticky: Balancer;
  let plain: Balancer;
  let nginx: Balancer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const sockets: Socket[] = [];
  const track = (s: Socket) => (sockets.push(s), s);
  const schema = freshSchema();

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      ROOMCAST_DATABASE_URL: SHARED_DATABASE_URL,
      ROOMCAST_DATABASE_SCHEMA: schema,
      ROOMCAST_REDIS_URL: redis.url,
      ROOMCAST_REDIS_PREFIX: `poll${randomBytes(3).toString('hex')}`,
      ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET,
      ROOMCAST_LOG_LEVEL: 'warn',
      ROOMCAST_PRESENCE_TTL_MS: '1500',
    };
    nodes = await Promise.all(['p1', 'p2', 'p3'].map((id) => startNode(id, env)));
    const servers = nodes.map((n) => ({ id: n.id, port: n.port }));
    [sticky, plain, nginx] = await Promise.all([startHaproxy(servers, 'cookie'), startHaproxy(servers), startNginx(servers)]);
    const res = await api(sticky.base, { authorization: `Bearer ${OPERATOR_SECRET}` }).post('/operator/apps', { name: 'polling' });
    app = { appId: res.body.result.id, apiKey: res.body.result.apiKey, clientKey: res.body.result.clientKey };
    const adm = admin(sticky.base, app);
    for (const id of ['ann', 'ben']) {
      tokens[id] = (await adm.post('/admin/clients', { _id: id, issueAccessToken: true })).body.result.token;
    }
    await adm.post('/rooms', { _id: 'hall', members: ['ann', 'ben'] });
  }, 45_000);

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await Promise.all([sticky?.stop(), plain?.stop(), nginx?.stop()]);
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await redis?.stop();
    await dropSchemas(SHARED_DATABASE_URL, [schema]);
  });

  const auth = (who: string) => ({ 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] });
  const perNode = () =>
    Promise.all(nodes.map(async (n) => (await admin(n.base, app).get('/admin/connection-count?scope=node')).body.result.count as number));
  const post = async (text: string) => {
    const res = await user(sticky.base, app, tokens.ben!).post('/rooms/hall/message', { message: text });
    expect(res.status).toBe(200);
    return res.body.result._id as string;
  };

  it('default clients connect through sticky sessions, upgrade, spread over the nodes and receive once', async () => {
    // withCredentials: socket.io-client keeps the balancer's cookie (a cookie jar in Node, the browser's own otherwise).
    const clients = Array.from({ length: 6 }, () =>
      track(connect(sticky.base, { transports: ['polling', 'websocket'], withCredentials: true, auth: auth('ann') })),
    );
    const received = clients.map(() => [] as string[]);
    clients.forEach((s, i) => s.on('chat message', (m: { _id: string }) => received[i]!.push(m._id)));
    await Promise.all(clients.map((s) => once(s, 'connect', 10_000)));
    await until(() => clients.every((s) => s.io.engine.transport.name === 'websocket'), 10_000);
    const counts = await perNode();
    expect(counts.reduce((a, b) => a + b, 0)).toBe(6);
    expect(counts.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    const id = await post('to upgraded clients');
    await until(() => received.every((r) => r.includes(id)), 10_000);
    await sleep(200);
    for (const r of received) expect(r.filter((x) => x === id)).toHaveLength(1);
    for (const s of clients) s.disconnect();
    await until(async () => (await perNode()).every((n) => n === 0), 10_000);
  });

  it('polling-only clients stay on their node through the sticky balancer', async () => {
    const clients = Array.from({ length: 3 }, () =>
      track(connect(sticky.base, { transports: ['polling'], withCredentials: true, auth: auth('ann') })),
    );
    let broken = 0;
    for (const s of clients) {
      s.on('disconnect', () => broken++);
      s.on('connect_error', () => broken++);
    }
    const received = clients.map(() => [] as string[]);
    clients.forEach((s, i) => s.on('chat message', (m: { _id: string }) => received[i]!.push(m._id)));
    await Promise.all(clients.map((s) => once(s, 'connect', 10_000)));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await post(`poll ${i}`));
    await until(() => received.every((r) => ids.every((id) => r.includes(id))), 10_000);
    // Acks travel back in polls too.
    const ack = await clients[0]!.timeout(5000).emitWithAck('chat message', { room: 'hall', message: 'from a poller' });
    expect(ack).toMatchObject({ RC: 0 });
    expect(broken).toBe(0);
    expect(clients.every((s) => s.io.engine.transport.name === 'polling')).toBe(true);
    for (const s of clients) s.disconnect();
  });

  it('without sticky sessions polling breaks, while WebSocket-only clients need none', async () => {
    const poller = track(connect(plain.base, { transports: ['polling'], auth: auth('ann') }));
    // Round-robin sends the session's next request to another node, which does not know the sid.
    const failure = await Promise.race([
      once<Error>(poller, 'connect_error', 10_000).then(([e]) => e.message),
      once(poller, 'connect', 10_000).then(() => once<string>(poller, 'disconnect', 10_000)).then(([reason]) => reason),
    ]);
    expect(failure).toMatch(/^(xhr (poll|post) error|transport (error|close))$/);

    const ws = Array.from({ length: 3 }, () => track(connect(plain.base, { auth: auth('ben') })));
    await Promise.all(ws.map((s) => once(s, 'connect', 10_000)));
    const got = ws.map((s) => once<{ message: string }>(s, 'chat message', 10_000));
    await post('to websocket clients');
    for (const [m] of await Promise.all(got)) expect(m.message).toBe('to websocket clients');
  });

  it('through nginx as deploy/nginx.conf ships it (ip_hash): default clients connect, upgrade and receive; pollers stay', async () => {
    const upgrading = track(connect(nginx.base, { transports: ['polling', 'websocket'], auth: auth('ann') }));
    const poller = track(connect(nginx.base, { transports: ['polling'], auth: auth('ann') }));
    let broken = 0;
    poller.on('disconnect', () => broken++);
    await Promise.all([once(upgrading, 'connect', 10_000), once(poller, 'connect', 10_000)]);
    await until(() => upgrading.io.engine.transport.name === 'websocket', 10_000);
    const got = [upgrading, poller].map((s) => once<{ message: string }>(s, 'chat message', 10_000));
    await post('through nginx');
    for (const [m] of await Promise.all(got)) expect(m.message).toBe('through nginx');
    const ack = await poller.timeout(5000).emitWithAck('chat message', { room: 'hall', message: 'poll via nginx' });
    expect(ack).toMatchObject({ RC: 0 });
    expect(broken).toBe(0);
  });

  it('in Chromium, from a page on another origin: default options through the sticky balancer, polling then the upgrade', async () => {
    const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
    if (!existsSync(executablePath)) throw new Error(`Chromium is required at ${executablePath} (Debian package 'chromium')`);
    const bundle = readFileSync(path.resolve(import.meta.dirname, '../../node_modules/socket.io-client/dist/socket.io.min.js'), 'utf8');
    // Same site as the balancer (127.0.0.1), another origin (port): the SERVERID cookie (SameSite=Lax by default) is sent.
    const site = http.createServer((req, res) => {
      if (req.url === '/socket.io.min.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script src="/socket.io.min.js"></script>');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
      const result = page.evaluate(
        ([base, auth]) =>
          new Promise<{ first: string; now: string; message: string }>((resolve, reject) => {
            const s = (window as any).io(base, { withCredentials: true, reconnection: false, auth });
            let first = '';
            s.io.on('open', () => {
              first = s.io.engine.transport.name;
              s.io.engine.on('upgrade', () => ((window as any).upgraded = true));
            });
            s.on('connect_error', (e: any) => reject(new Error(e.message)));
            s.on('disconnect', (reason: string) => reject(new Error(reason)));
            s.on('chat message', (m: any) => resolve({ first, now: s.io.engine.transport.name, message: m.message }));
          }),
        [sticky.base, auth('ann')] as const,
      );
      await page.waitForFunction(() => (window as any).upgraded === true, undefined, { timeout: 10_000 });
      await post('to the browser');
      expect(await result).toEqual({ first: 'polling', now: 'websocket', message: 'to the browser' });
    } finally {
      await browser.close();
      site.close();
    }
  });
});
