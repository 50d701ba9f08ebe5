import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, startTestServer, type TestApp, type TestServer, TWO_NODES, user } from '../helpers/server.js';

/**
 * Search over messages stored, edited, recalled or deleted through another node, or before this
 * node (re)started: the index lives in the database (PostgreSQL's GIN index over each message's
 * grams), so every node answers the same. Two nodes (one per transport) on one PostgreSQL schema
 * and one Redis. Edit and recall bodies as the Flutter SDK sends them
 * (lib/services/data/managers/im_message_data_manager.dart: `editMessage` posts the message's
 * parameters plus `_id`, `recallMessage` posts `{_id, messageType: 'recall'}`).
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
    // New messages through node 0 are found through node 1, and back.
    const later = (await user(nodes[0]!.base, app, tokens.alice!).post('/rooms/shared/message', { message: 'kickoff moved to Friday' })).body.result._id;
    expect(await search(nodes[1]!, 'bob', 'kickoff')).toEqual([later, early]);
    const viaOne = (await user(nodes[1]!.base, app, tokens.bob!).post('/rooms/shared/message', { message: 'Friday works' })).body.result._id;
    expect(await search(nodes[0]!, 'alice', 'friday')).toEqual([viaOne, later]);
    // A deletion through one node is honoured by the other.
    await admin(nodes[1]!.base, app).del(`/rooms/shared/messages/${later}`);
    expect(await search(nodes[0]!, 'alice', 'kickoff')).toEqual([early]);
  });

  it('an edit and a recall made through node B are what node A finds; a restarted node finds the same', async () => {
    const send = (node: TestServer, who: string, body: Record<string, unknown>) =>
      user(node.base, app, tokens[who]!).post('/rooms/shared/message', body).then((r) => r.body.result);
    const draft = (await send(nodes[0]!, 'bob', { messageType: 'text', message: '預算草案 draft budget' }))._id;
    const secret = (await send(nodes[0]!, 'bob', { messageType: 'text', message: '密碼是 swordfish' }))._id;
    expect(await search(nodes[0]!, 'alice', '預算')).toEqual([draft]);
    expect(await search(nodes[0]!, 'alice', 'swordfish')).toEqual([secret]);
    // Edited and recalled through node B (1).
    const edited = await send(nodes[1]!, 'bob', { _id: draft, messageType: 'text', message: '最終預算 final budget' });
    expect(edited).toMatchObject({ _id: draft, message: '最終預算 final budget' });
    expect((await send(nodes[1]!, 'bob', { _id: secret, messageType: 'recall' })).messageType).toBe('recall');
    // Node A (0) finds the new text, not the old, and never the recalled one.
    expect(await search(nodes[0]!, 'alice', 'draft')).toEqual([]);
    expect(await search(nodes[0]!, 'alice', '最終預算')).toEqual([draft]);
    expect(await search(nodes[0]!, 'alice', 'swordfish')).toEqual([]);
    expect(await search(nodes[0]!, 'alice', '密碼')).toEqual([]);
    const before = await search(nodes[0]!, 'alice', '預算');
    expect(before).toEqual([draft]);
    // A restarted node A answers from the same index at once.
    await nodes[0]!.stop();
    nodes[0] = await startTestServer(TWO_NODES[0], cluster());
    expect(await search(nodes[0]!, 'alice', '預算')).toEqual(before);
    expect(await search(nodes[0]!, 'alice', 'kickoff')).toHaveLength(1);
    expect(await search(nodes[0]!, 'alice', 'swordfish')).toEqual([]);
  });
});
