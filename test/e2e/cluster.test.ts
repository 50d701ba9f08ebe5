import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHaproxy, startNode, type Balancer, type NodeProcess } from '../helpers/cluster.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, api, OPERATOR_SECRET, type TestApp, user } from '../helpers/server.js';
import { connect, once, until } from '../helpers/sockets.js';

/**
 * The horizontal-scaling acceptance test: PostgreSQL (a schema of this suite's own on the
 * shared server), a real redis-server, three compiled roomcast processes and a real HAProxy
 * on loopback; clients are the stock
 * socket.io-client going through the balancer.
 */
describe('a three-node cluster behind HAProxy', () => {
  let redis: RedisProcess;
  let nodes: NodeProcess[] = [];
  let lb: Balancer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  /** Every message the server acknowledged (200 to its sender), in send order. */
  const acked: string[] = [];

  interface Client {
    who: string;
    socket: Socket;
    messages: string[];
    disconnects: number;
    connects: number;
  }
  const clients: Client[] = [];
  const schema = freshSchema();

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    const env = {
      ROOMCAST_DATABASE_URL: SHARED_DATABASE_URL,
      ROOMCAST_DATABASE_SCHEMA: schema,
      ROOMCAST_REDIS_URL: redis.url,
      ROOMCAST_REDIS_PREFIX: `e2e${randomBytes(3).toString('hex')}`,
      ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET,
      ROOMCAST_LOG_LEVEL: 'warn',
      ROOMCAST_PRESENCE_TTL_MS: '1500',
    };
    nodes = await Promise.all(['node1', 'node2', 'node3'].map((id) => startNode(id, env)));
    lb = await startHaproxy(nodes.map((n) => ({ id: n.id, port: n.port })));

    const res = await api(lb.base, { authorization: `Bearer ${OPERATOR_SECRET}` }).post('/operator/apps', { name: 'cluster' });
    expect(res.status).toBe(200);
    app = { appId: res.body.result.id, apiKey: res.body.result.apiKey, clientKey: res.body.result.clientKey };
    const adm = admin(lb.base, app);
    for (const id of ['alice', 'bob', 'carol', 'dave']) {
      const created = await adm.post('/admin/clients', { _id: id, nickname: id, issueAccessToken: true });
      expect(created.status).toBe(200);
      tokens[id] = created.body.result.token;
    }
    expect((await adm.post('/rooms', { _id: 'lobby', name: 'Lobby', members: ['alice', 'bob', 'carol'] })).status).toBe(200);

    // Six sockets, connected one after another through the balancer (round-robin).
    for (const who of ['alice', 'bob', 'carol', 'alice', 'bob', 'carol']) {
      const socket = connect(lb.base, {
        auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] },
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 500,
      });
      const client: Client = { who, socket, messages: [], disconnects: 0, connects: 0 };
      socket.on('chat message', (m: { _id: string }) => client.messages.push(m._id));
      socket.on('connect', () => client.connects++);
      socket.on('disconnect', () => client.disconnects++);
      await once(socket, 'connect', 5000);
      clients.push(client);
    }
  }, 45_000);

  afterAll(async () => {
    for (const c of clients) c.socket.disconnect();
    await lb?.stop();
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await redis?.stop();
    await dropSchemas(SHARED_DATABASE_URL, [schema]);
  });

  const live = () => nodes.filter((n) => n.id !== killed);
  let killed: string | undefined;
  const localCount = async (node: NodeProcess, client?: string) =>
    (await admin(node.base, app).get(`/admin/connection-count?scope=node${client ? `&client=${client}` : ''}`)).body.result.count as number;
  const clusterCount = async () => (await admin(lb.base, app).get('/admin/connection-count')).body.result.count as number;

  /** Posts as `who` to the lobby through `base`; records the id when acknowledged. */
  async function post(base: string, who: string, text: string): Promise<string> {
    const res = await user(base, app, tokens[who]!).post('/rooms/lobby/message', { message: text });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    acked.push(res.body.result._id);
    return res.body.result._id;
  }

  /**
   * Every client received each of `ids` exactly once. A last message sent after them reaches
   * each client after any duplicate would have (one room channel: Redis orders its messages),
   * so no pause is needed to reveal duplicates.
   */
  async function expectEveryoneOnce(ids: string[]): Promise<void> {
    await until(() => clients.every((c) => ids.every((id) => c.messages.includes(id))), 10_000);
    const marker = await post(lb.base, 'alice', 'marker');
    await until(() => clients.every((c) => c.messages.includes(marker)), 10_000);
    for (const c of clients) {
      for (const id of ids) expect(c.messages.filter((m) => m === id), `${c.who} got ${id}`).toHaveLength(1);
    }
  }

  async function expectHistoryHasEveryAcked(): Promise<void> {
    for (const who of ['alice', 'bob', 'carol']) {
      const res = await user(lb.base, app, tokens[who]!).get('/rooms/lobby/messages/v3?limit=1000');
      expect(res.status).toBe(200);
      const ids = new Set(res.body.result.data.map((m: { _id: string }) => m._id));
      expect(acked.filter((id) => !ids.has(id)), `acknowledged but missing for ${who}`).toEqual([]);
      expect(res.body.result.totalCount).toBe(acked.length);
    }
  }

  it('spreads clients over the nodes and counts them cluster-wide', async () => {
    const perNode = await Promise.all(nodes.map((n) => localCount(n)));
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(6);
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(perNode).toEqual([2, 2, 2]); // round-robin over three healthy nodes
    await until(async () => (await clusterCount()) === 6, 3000);
  });

  it('delivers a message posted to any node to every member on every node exactly once', async () => {
    const ids = [
      await post(nodes[0]!.base, 'alice', 'via node1'),
      await post(nodes[1]!.base, 'bob', 'via node2'),
      await post(nodes[2]!.base, 'carol', 'via node3'),
      await post(lb.base, 'alice', 'via the balancer'),
    ];
    await expectEveryoneOnce(ids);
  });

  it('a token revoked through one node cuts the socket held on another', async () => {
    const dave = connect(lb.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.dave } });
    await once(dave, 'connect', 5000);
    const counts = await Promise.all(nodes.map((n) => localCount(n, 'dave')));
    const holder = counts.indexOf(1);
    expect(holder).toBeGreaterThanOrEqual(0);
    const other = nodes[(holder + 1) % nodes.length]!;
    const error = once<{ error: { code: string } }>(dave, 'error', 5000);
    const gone = once(dave, 'disconnect', 5000);
    const res = await admin(other.base, app).del('/admin/clients/dave/token', {});
    expect(res.status).toBe(200);
    expect((await error)[0]!.error.code).toBe('INVALID_TOKEN');
    await gone;
    dave.disconnect();
  });

  it("a killed node's clients reconnect through the balancer and find every acknowledged message", async () => {
    for (let i = 0; i < 5; i++) await post(nodes[i % 3]!.base, 'bob', `before the crash ${i}`);
    const victim = nodes[1]!;
    const onVictim = await localCount(victim);
    expect(onVictim).toBeGreaterThan(0);
    killed = victim.id;
    await victim.kill('SIGKILL');
    await until(() => clients.filter((c) => c.disconnects > 0).length === onVictim, 5000);
    await until(() => clients.every((c) => c.socket.connected), 15_000);
    const moved = clients.filter((c) => c.disconnects > 0);
    for (const c of moved) expect(c.connects).toBe(2);
    const perNode = await Promise.all(live().map((n) => localCount(n)));
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(6);
    await expectHistoryHasEveryAcked();
    // The dead node's sockets leave the cluster-wide count by themselves (presence TTL).
    await until(async () => (await clusterCount()) === 6, 8000);
    await expectEveryoneOnce([await post(lb.base, 'carol', 'after the crash')]);
  });

  it('survives a Redis restart without losing acknowledged messages', async () => {
    for (let i = 0; i < 5; i++) await post(live()[i % 2]!.base, 'alice', `before redis restart ${i}`);
    const before = clients.map((c) => c.disconnects);
    await redis.kill('SIGKILL');
    for (const n of live()) await until(async () => (await fetch(`${n.base}/readyz`)).status === 503, 5000);
    // Data is in PostgreSQL: a send is still stored and acknowledged (its live fan-out is what Redis' absence costs).
    await post(live()[0]!.base, 'alice', 'while redis is down');
    await redis.restart();
    for (const n of live()) await until(async () => (await fetch(`${n.base}/readyz`)).status === 200, 10_000);
    // Sockets stayed where they were; the balancer takes the nodes back once they are ready.
    expect(clients.map((c) => c.disconnects)).toEqual(before);
    await until(async () => (await fetch(`${lb.base}/readyz`)).status === 200, 5000);
    await expectHistoryHasEveryAcked();
    await expectEveryoneOnce([await post(lb.base, 'bob', 'after the redis restart')]);
  });
});
