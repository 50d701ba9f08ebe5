import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, startTestServer, type TestApp, type TestServer, TWO_NODES, user } from '../helpers/server.js';

/**
 * Search over messages stored through another node (or before this node started): each node
 * catches a room's index up from the store before searching. Two nodes (one per transport) on one
 * PostgreSQL schema and one Redis.
 */
describe('POST /search across a cluster', () => {
  let redis: RedisProcess;
  const nodes: TestServer[] = [];
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const prefix = `sc${Math.random().toString(36).slice(2, 8)}`;
  const schema = freshSchema();
  /** A cluster node: data in one PostgreSQL schema, bus and presence on one Redis. */
  const cluster = () => ({ redisUrl: redis.url, redisPrefix: prefix, databaseUrl: SHARED_DATABASE_URL, databaseSchema: schema });

  beforeAll(async () => {
    redis = await startRedis();
    nodes.push(await startTestServer(TWO_NODES[0], cluster()));
    app = await nodes[0]!.createApp();
    for (const id of ['alice', 'bob']) tokens[id] = await nodes[0]!.createUser(app, id);
    await admin(nodes[0]!.base, app).post('/rooms', { _id: 'shared', members: ['alice', 'bob'] });
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await redis?.stop();
  });

  const search = (node: TestServer, who: string, keyword: string) =>
    user(node.base, app, tokens[who]!).post('/search', { type: ['messages'], keyword }).then((r) => r.body.result.messages.flatMap((h: { messages: string[] }) => h.messages));

  it('finds messages another node stored, before and after this node started', async () => {
    const early = (await user(nodes[0]!.base, app, tokens.alice!).post('/rooms/shared/message', { message: 'kickoff meeting notes' })).body.result._id;
    // A node started later has never seen that message.
    nodes.push(await startTestServer(TWO_NODES[1], cluster()));
    expect(await search(nodes[1]!, 'bob', 'kickoff')).toEqual([early]);
    // New messages through node 0 are found through node 1 (caught up from its watermark), and back.
    const later = (await user(nodes[0]!.base, app, tokens.alice!).post('/rooms/shared/message', { message: 'kickoff moved to Friday' })).body.result._id;
    expect(await search(nodes[1]!, 'bob', 'kickoff')).toEqual([later, early]);
    const viaOne = (await user(nodes[1]!.base, app, tokens.bob!).post('/rooms/shared/message', { message: 'Friday works' })).body.result._id;
    expect(await search(nodes[0]!, 'alice', 'friday')).toEqual([viaOne, later]);
    // A deletion through one node is honoured by the other (confirmed against the store).
    await admin(nodes[1]!.base, app).del(`/rooms/shared/messages/${later}`);
    expect(await search(nodes[0]!, 'alice', 'kickoff')).toEqual([early]);
  });
});
