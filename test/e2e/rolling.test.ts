import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHaproxy, startNode, type Balancer, type NodeProcess } from '../helpers/cluster.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, api, OPERATOR_SECRET, type TestApp, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once, sleep, until } from '../helpers/sockets.js';

/**
 * A rolling deploy: three compiled nodes behind a real HAProxy (health-checked on /readyz every
 * 250 ms, down after 2 failures), PostgreSQL (a schema of this suite's own) and a real
 * redis-server, six stock
 * socket.io-clients with the client's default reconnection settings, all sending while each
 * node in turn gets SIGTERM and is started again on its port.
 *
 * Bounds stated and checked: every client of a drained node reconnects within
 * RECONNECT_BOUND_MS of losing its socket (the stock client waits 0.5–1.5 s before its first
 * attempt); a node exits (code 0) within its shutdown timeout; no acknowledged message is lost;
 * every stored message reaches every member, live or from the history fetch an IMKIT client
 * makes when it reconnects; usage counted by a drained node was flushed before it exited.
 */
const DRAIN_DELAY_MS = 700; // > HAProxy's 2 × 250 ms to mark the node down
const DRAIN_WINDOW_MS = 1000;
const SHUTDOWN_TIMEOUT_MS = 8000;
const RECONNECT_BOUND_MS = 3000;

interface Client {
  who: string;
  socket: Socket;
  live: string[];
  recovered: Set<string>;
  events: { kind: 'connect' | 'disconnect'; at: number; reason?: string }[];
}

describe.each(TRANSPORTS)('a rolling deploy (SIGTERM each node in turn) behind HAProxy, on %s', (transport) => {
  let redis: RedisProcess;
  let nodes: NodeProcess[] = [];
  let lb: Balancer;
  let app: TestApp;
  let env: Record<string, string>;
  const tokens: Record<string, string> = {};
  const acked: string[] = [];
  const clients: Client[] = [];
  let sending = true;
  let senders: Promise<void>[] = [];
  const schema = freshSchema();

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    env = {
      ROOMCAST_TRANSPORT: transport,
      ROOMCAST_DATABASE_URL: SHARED_DATABASE_URL,
      ROOMCAST_DATABASE_SCHEMA: schema,
      ROOMCAST_REDIS_URL: redis.url,
      ROOMCAST_REDIS_PREFIX: `roll${randomBytes(3).toString('hex')}`,
      ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET,
      ROOMCAST_LOG_LEVEL: 'info',
      ROOMCAST_PRESENCE_TTL_MS: '1500',
      ROOMCAST_HANDSHAKES_PER_MINUTE_PER_ADDRESS: '100000',
      ROOMCAST_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
      ROOMCAST_DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS),
      ROOMCAST_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      // Only the drain flushes usage: the final count proves the drained nodes flushed.
      ROOMCAST_USAGE_FLUSH_MS: '600000',
    };
    nodes = await Promise.all(['node1', 'node2', 'node3'].map((id) => startNode(id, env)));
    lb = await startHaproxy(nodes.map((n) => ({ id: n.id, port: n.port })));
    const res = await api(lb.base, { authorization: `Bearer ${OPERATOR_SECRET}` }).post('/operator/apps', { name: 'rolling' });
    expect(res.status).toBe(200);
    app = { appId: res.body.result.id, apiKey: res.body.result.apiKey, clientKey: res.body.result.clientKey };
    const adm = admin(lb.base, app);
    for (const id of ['alice', 'bob', 'carol']) {
      // The body IMKIT's API documents for POST /admin/clients (imkit/api-doc: _id, nickname, issueAccessToken).
      const created = await adm.post('/admin/clients', { _id: id, nickname: id, issueAccessToken: true });
      expect(created.status).toBe(200);
      tokens[id] = created.body.result.token;
    }
    expect((await adm.post('/rooms', { _id: 'lobby', name: 'Lobby', members: ['alice', 'bob', 'carol'] })).status).toBe(200);

    for (const who of ['alice', 'bob', 'carol', 'alice', 'bob', 'carol']) {
      // The stock client with its default reconnection settings (delay 1 s ± 50 %, max 5 s).
      const socket = connect(lb.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] }, reconnection: true });
      const client: Client = { who, socket, live: [], recovered: new Set(), events: [] };
      socket.on('chat message', (m: { _id: string }) => client.live.push(m._id));
      socket.on('disconnect', (reason: string) => client.events.push({ kind: 'disconnect', at: Date.now(), reason }));
      socket.on('connect', () => {
        const reconnect = client.events.length > 0;
        client.events.push({ kind: 'connect', at: Date.now() });
        // What an IMKIT client does after a reconnect: fetch what it missed from history.
        if (reconnect) void catchUp(client);
      });
      await once(socket, 'connect', 5000);
      clients.push(client);
    }
    senders = clients.map((c, i) => sendLoop(c, i));
  }, 60_000);

  afterAll(async () => {
    sending = false;
    for (const c of clients) c.socket.disconnect();
    await lb?.stop();
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await dropSchemas(SHARED_DATABASE_URL, [schema]);
  });

  async function catchUp(client: Client): Promise<void> {
    // The newest page: what a reconnecting client missed is the latest.
    const res = await user(lb.base, app, tokens[client.who]!).get('/rooms/lobby/messages/v3?limit=1000');
    if (res.status !== 200) return;
    for (const m of res.body.result.data as { _id: string }[]) client.recovered.add(m._id);
  }

  /** The whole history, page by page (newest first, each page anchored on the previous one's oldest). */
  async function allHistory(): Promise<string[]> {
    const ids = new Set<string>();
    let before = '';
    for (;;) {
      const res = await user(lb.base, app, tokens.alice!).get(`/rooms/lobby/messages/v3?limit=1000${before ? `&beforeMessage=${before}` : ''}`);
      expect(res.status).toBe(200);
      const page = (res.body.result.data as { _id: string }[]).map((m) => m._id);
      const fresh = page.filter((id) => !ids.has(id));
      for (const id of fresh) ids.add(id);
      if (fresh.length === 0 || page.length < 1000) return [...ids];
      before = page[page.length - 1]!;
    }
  }

  /** Each client sends over its socket while connected; an acknowledged message is stored. */
  async function sendLoop(client: Client, n: number): Promise<void> {
    let i = 0;
    while (sending) {
      if (client.socket.connected) {
        try {
          const ack = await client.socket.timeout(3000).emitWithAck('chat message', { room: 'lobby', message: `${client.who}#${n}.${i++}` });
          if (ack?.RC === 0) acked.push(ack.result._id);
        } catch {
          // no ack (the socket went away): not acknowledged, so not promised
        }
      }
      await sleep(80);
    }
  }

  const localCount = async (node: NodeProcess) =>
    (await admin(node.base, app).get('/admin/connection-count?scope=node')).body.result.count as number;

  it('restarts every node with SIGTERM: clients reconnect within the bound, nothing acknowledged is lost, everyone gets everything', async () => {
    await sleep(500); // traffic flowing before the first restart
    const report: string[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      const before = await localCount(node);
      expect(before).toBeGreaterThan(0);
      const marks = clients.map((c) => c.events.length);
      const signalled = Date.now();
      node.signal('SIGTERM');
      // Readiness fails first, while the node still holds its sockets and answers REST.
      await until(async () => (await fetch(`${node.base}/readyz`).then((r) => r.status, () => 0)) === 503, 2000);
      expect(await localCount(node)).toBe(before);
      expect(await node.exited).toBe(0);
      const exitMs = Date.now() - signalled;
      expect(exitMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      // Its clients saw a transport close (which the stock client reconnects from), spread over the window.
      const moved = clients.filter((c, k) => c.events.slice(marks[k]).some((e) => e.kind === 'disconnect'));
      expect(moved).toHaveLength(before);
      const drops = moved.map((c, k) => c.events.slice(marks[clients.indexOf(c)]).find((e) => e.kind === 'disconnect')!);
      for (const d of drops) expect(d.reason).toBe('transport close');
      for (const d of drops) expect(d.at - signalled).toBeGreaterThanOrEqual(DRAIN_DELAY_MS);
      if (drops.length > 1) {
        const spread = Math.max(...drops.map((d) => d.at)) - Math.min(...drops.map((d) => d.at));
        expect(spread).toBeGreaterThanOrEqual(DRAIN_WINDOW_MS / drops.length - 200);
      }
      await until(() => clients.every((c) => c.socket.connected), RECONNECT_BOUND_MS + DRAIN_WINDOW_MS + 1000);
      const gaps = moved.map((c) => {
        const tail = c.events.slice(marks[clients.indexOf(c)]);
        const down = tail.find((e) => e.kind === 'disconnect')!;
        const up = tail.find((e) => e.kind === 'connect' && e.at >= down.at)!;
        return up.at - down.at;
      });
      for (const gap of gaps) expect(gap).toBeLessThanOrEqual(RECONNECT_BOUND_MS);
      report.push(`${node.id}: exit ${exitMs} ms after SIGTERM, ${before} sockets, reconnected after ${gaps.join('/')} ms`);
      nodes[i] = await startNode(node.id, env, { port: node.port });
      await until(async () => (await fetch(`${lb.base}/readyz`)).status === 200, 5000);
      await sleep(300); // traffic on the restarted cluster before the next step
    }
    sending = false;
    await Promise.all(senders);
    console.log(`rolling deploy on ${transport}: ${acked.length} messages acknowledged\n  ${report.join('\n  ')}`);
    expect(acked.length).toBeGreaterThan(50);

    // Nothing acknowledged is lost.
    const stored = await allHistory();
    const storedSet = new Set(stored);
    expect(acked.filter((id) => !storedSet.has(id))).toEqual([]);

    // Every stored message reached every member: live, or from the history fetch at reconnect.
    const missing = () => clients.flatMap((c) => stored.filter((id) => !c.live.includes(id) && !c.recovered.has(id)).map((id) => `${c.who}:${id}`));
    await until(() => missing().length === 0, 10_000).catch(() => undefined);
    expect(missing()).toEqual([]);
    for (const c of clients) expect(new Set(c.live).size, `${c.who} got a message twice`).toBe(c.live.length);
    const fromHistory = clients.map((c) => stored.filter((id) => !c.live.includes(id)).length);
    console.log(`  per client, of ${stored.length} stored: missed live while reconnecting and fetched from history ${fromHistory.join('/')}`);

    // The drained nodes flushed their usage counts before exiting (no periodic flush ran).
    // Each /admin/usage call flushes the answering node's own counts first: ask the three in
    // turn, so the last answer holds every node's (the drained processes' were flushed at exit).
    let counted = 0;
    for (const n of nodes) counted = (await admin(n.base, app).get('/admin/usage?granularity=hour')).body.result.totals.messagesSocket;
    expect(counted).toBe(stored.length);
  }, 120_000);
});
