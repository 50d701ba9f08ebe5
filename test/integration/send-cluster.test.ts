import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, errorCode, startTestServer, type TestApp, type TestServer, TWO_NODES, user } from '../helpers/server.js';
import { connect, once } from '../helpers/sockets.js';

/**
 * Sends through a node that cached a room, after another node changed it. On PostgreSQL a node
 * checks a send against its cached copy of the room and the store takes the message only if
 * the room is still at the version checked (Store.getRoomForSend); otherwise the send is checked
 * again on a fresh read. Two nodes (one per transport) on one PostgreSQL schema and one Redis.
 * Bodies as the clients send them: `POST /rooms/:id/message` as the Flutter SDK posts it
 * (lib/services/network/api/requests/im_message_request.dart, sendMessage), the socket
 * `chat message` `{room, message, messageType}` (protocol spec §3.10; JSLIB `sendMessage`),
 * removing members `POST /rooms/:id/delete/members` `{members}` (Vue `removeMembers`) and
 * freezing `PUT /rooms/:id` `{status: 0}` (api-doc rooms).
 */
describe('sends checked against a room another node changed', () => {
  let redis: RedisProcess;
  const nodes: TestServer[] = [];
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const schema = freshSchema();
  const cluster = () => ({ redisUrl: redis.url, redisPrefix: `scl${Math.random().toString(36).slice(2, 8)}`, databaseUrl: SHARED_DATABASE_URL, databaseSchema: schema });

  beforeAll(async () => {
    redis = await startRedis();
    const settings = cluster();
    nodes.push(await startTestServer(TWO_NODES[0], settings));
    nodes.push(await startTestServer(TWO_NODES[1], settings));
    app = await nodes[0]!.createApp();
    for (const id of ['owner', 'alice', 'bob']) tokens[id] = await nodes[0]!.createUser(app, id);
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await redis?.stop();
  });

  const [a, b] = [0, 1];
  const send = (node: number, who: string, room: string, message: string) =>
    user(nodes[node]!.base, app, tokens[who]!).post(`/rooms/${room}/message`, { roomId: room, messageType: 'text', message, reply: null, mentions: [] });
  const history = async (room: string) =>
    (await admin(nodes[a]!.base, app).get(`/rooms/${room}/messages/v3?limit=50`)).body.result.data.map((m: { message: string }) => m.message).reverse();

  it('a member removed on node B cannot send on node A, which had the room cached; the others go on', async () => {
    await admin(nodes[a]!.base, app).post('/rooms', { _id: 'team', owner: 'owner', members: ['owner', 'alice', 'bob'] });
    // Node A reads (and caches) the room for both senders.
    expect((await send(a, 'bob', 'team', 'bob 1')).status).toBe(200);
    expect((await send(a, 'alice', 'team', 'alice 1')).status).toBe(200);

    const removed = await admin(nodes[b]!.base, app).post('/rooms/team/delete/members', { members: ['bob'] });
    expect(removed.status).toBe(200);
    const refused = await send(a, 'bob', 'team', 'bob after removal');
    expect({ status: refused.status, code: errorCode(refused) }).toEqual({ status: 403, code: 'NOT_ROOM_MEMBER' });
    // Alice's send after the change is checked again and stored once.
    expect((await send(a, 'alice', 'team', 'alice 2')).status).toBe(200);
    expect(await history('team')).toEqual(['bob 1', 'alice 1', 'alice 2']);
  });

  it('a room frozen on node B refuses sends on node A, over REST and over the socket', async () => {
    await admin(nodes[a]!.base, app).post('/rooms', { _id: 'ice', owner: 'owner', members: ['owner', 'alice'] });
    const s = connect(nodes[a]!.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice } });
    open.push(s);
    await once(s, 'connect');
    expect(await s.timeout(3000).emitWithAck('chat message', { room: 'ice', message: 'socket 1', messageType: 'text' })).toMatchObject({ RC: 0 });
    expect((await send(a, 'alice', 'ice', 'rest 1')).status).toBe(200);

    expect((await admin(nodes[b]!.base, app).put('/rooms/ice', { status: 0 })).status).toBe(200);
    expect(await s.timeout(3000).emitWithAck('chat message', { room: 'ice', message: 'socket 2', messageType: 'text' })).toMatchObject({ error: { code: 'ROOM_FROZEN' } });
    expect(errorCode(await send(a, 'alice', 'ice', 'rest 2'))).toBe('ROOM_FROZEN');
    // The owner still may (checked on the fresh room), and thawing on B lets Alice send on A again.
    expect((await send(a, 'owner', 'ice', 'owner while frozen')).status).toBe(200);
    expect((await admin(nodes[b]!.base, app).put('/rooms/ice', { status: 1 })).status).toBe(200);
    expect((await send(a, 'alice', 'ice', 'rest 3')).status).toBe(200);
    expect(await history('ice')).toEqual(['socket 1', 'rest 1', 'owner while frozen', 'rest 3']);
  });

  it('a room deleted and created again on node B under the same id takes sends on node A by its new members', async () => {
    await admin(nodes[a]!.base, app).post('/rooms', { _id: 'again', owner: 'owner', members: ['owner', 'alice'] });
    expect((await send(a, 'alice', 'again', 'first life')).status).toBe(200);
    expect((await admin(nodes[b]!.base, app).del('/rooms/again')).status).toBe(200);
    expect((await admin(nodes[b]!.base, app).post('/rooms', { _id: 'again', owner: 'owner', members: ['owner', 'bob'] })).status).toBe(200);
    expect(errorCode(await send(a, 'alice', 'again', 'second life?'))).toBe('NOT_ROOM_MEMBER');
    expect((await send(a, 'bob', 'again', 'second life')).status).toBe(200);
    expect(await history('again')).toEqual(['second life']);
  });
});
