import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { roomTopic } from '../../src/bus/bus.js';
import { LocalBus } from '../../src/bus/local.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { deepJson, deepText, handshakeOutcome, rawHttp, rawSocket, statusOf, upgradeStatus } from '../helpers/raw.js';
import { collect, connect, once, sleep, until } from '../helpers/sockets.js';

/**
 * Regression tests for the adversarial findings of issue #11, one `it` per item, on both
 * transports and on both stores (SQLite embedded; PostgreSQL with the Redis bus, cluster mode).
 * Request bodies follow the SDKs: messages as the Vue SDK sends them (`{message, messageType}`),
 * direct rooms as Flutter's createDirectRoom (`POST /rooms/createAndJoin {invitee: "<id>"}`),
 * auth2 as the Vue SDK (`auth2(token, {"IM-CLIENT-KEY": key})`) — see ../../shared/spec/imkit-protocol.md.
 */
const STORES = ['sqlite', 'postgres'] as const;
const COMBOS = TRANSPORTS.flatMap((transport) => STORES.map((store) => [transport, store] as const));

let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
});
afterAll(async () => {
  await redis?.stop();
});

/** The room id the server derived for a pair before the fix (sha256 of the sorted pair). */
const oldDirectId = (a: string, b: string) => createHash('sha256').update([a, b].sort().join('\u0000')).digest('hex').slice(0, 32);

/** Store settings of one server: its own SQLite file, or its own schema on PostgreSQL with the Redis bus. */
function storeSettings(kind: (typeof STORES)[number], prefix: string) {
  return kind === 'postgres'
    ? { databaseUrl: SHARED_DATABASE_URL, databaseSchema: freshSchema(), redisUrl: redis.url, redisPrefix: prefix }
    : { databasePath: path.join(mkdtempSync(path.join(tmpdir(), 'roomcast-sec-')), 'roomcast.db') };
}

describe.each(COMBOS)('security over %s on the %s store', (transport, store) => {
  let t: TestServer;
  let data: Store;
  const bus = new LocalBus();
  let app: TestApp;
  let prefix: string;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const as = (who: string) => user(t.base, app, tokens[who]!);
  let adm: ReturnType<typeof admin>;

  beforeAll(async () => {
    prefix = `s${randomBytes(4).toString('hex')}`;
    const settings = storeSettings(store, prefix);
    // The test keeps a handle on the store and (embedded) bus it gives the server.
    data = (await openStore(loadConfig({}, { ...settings, logLevel: 'silent' }), createLogger('silent'))).store;
    t = await startTestServer(transport, settings, store === 'postgres' ? { store: data } : { store: data, bus });
    app = await t.createApp();
    for (const id of ['alice', 'bob', 'carol', 'mallory']) tokens[id] = await t.createUser(app, id);
    adm = admin(t.base, app);
    await adm.post('/rooms', { _id: 'g', name: 'Group', members: ['alice', 'bob', 'carol'] });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(() => t?.close());

  const socketOf = async (who: string) => {
    const s = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] } });
    open.push(s);
    await once(s, 'connect');
    return s;
  };
  const alive = async () => expect((await fetch(`${t.base}/healthz`)).status).toBe(200);

  it('1: malformed request targets are answered, not a crash', async () => {
    for (const target of ['//x:99999/', 'http://[::1/x', '//', 'http://a:99999/healthz', 'http://a/healthz']) {
      const absolute = !target.startsWith('/');
      // uWebSockets.js does not route absolute-form targets: it holds such a connection until
      // its idle timeout closes it. No answer is expected there, only that the node lives.
      const response = await rawHttp(t.base, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, transport === 'uws' && absolute ? 300 : 3000);
      const status = statusOf(response);
      const answered = status === 200 || (status >= 400 && status < 500);
      expect(answered || (transport === 'uws' && absolute), `${target} → ${status}`).toBe(true);
      await alive();
    }
  });

  it('2/3: JSON nested too deep is refused before it is stored, over REST and sockets; nothing is stored', async () => {
    const before = (await as('alice').get('/rooms/g/messages/v3')).body.result.totalCount;
    for (const depth of [4104, 4500, 40]) {
      // Built as text: JSON.stringify itself cannot encode values this deep.
      const r = await as('bob').post('/rooms/g/message', `{"message":${deepText(depth)},"messageType":"text"}`);
      expect([r.status, code(r)]).toEqual([400, 'JSON_TOO_DEEP']);
      expect(code(await as('bob').post('/me', `{"nickname":"Bob","extra":${deepText(depth)}}`))).toBe('JSON_TOO_DEEP');
      expect(code(await adm.post('/admin/clients', `{"_id":"bob","extra":${deepText(depth)}}`))).toBe('JSON_TOO_DEEP');
    }
    const s = await socketOf('bob');
    const ack = await s.emitWithAck('chat message', { room: 'g', message: deepJson(1000), messageType: 'text' });
    expect(ack.error.code).toBe('JSON_TOO_DEEP');
    // Nothing stored: every co-member's views still answer, and answer the same count.
    expect((await as('alice').get('/rooms/g/messages/v3')).body.result.totalCount).toBe(before);
    expect((await as('alice').get('/rooms')).status).toBe(200);
    expect((await as('alice').get('/rooms/g')).status).toBe(200);
    expect((await as('alice').post('/rooms/g/message', { message: 'hello', messageType: 'text' })).status).toBe(200);
  });

  it('2: an event on the bus that cannot be encoded does not take the node down', async () => {
    const s = await socketOf('alice');
    const got = collect<{ message: string }>(s, 'chat message');
    if (store === 'postgres') {
      // Straight onto the Redis channel, as another node (or an older version) could publish it.
      const raw = new Redis(redis.url);
      await raw.publish(`${prefix}:bus:${roomTopic(app.appId, 'g')}`, `{"kind":"deliver","event":"chat message","payload":${deepText(5000)}}`);
      raw.disconnect();
    } else {
      expect(() => bus.publish(roomTopic(app.appId, 'g'), { kind: 'deliver', event: 'chat message', payload: deepJson(5000) })).not.toThrow();
    }
    await as('bob').post('/rooms/g/message', { message: 'after the poison', messageType: 'text' });
    await until(() => got.some((m) => m.message === 'after the poison'));
    expect(s.connected).toBe(true);
    await alive();
  });

  it('4: message ids are random and a client-chosen _id never overwrites another message', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await as('alice').post('/rooms/g/message', { message: `m${i}`, messageType: 'text' })).body.result._id);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{24}$/);
    // Consecutive ids share no prefix a counter or a clock would give them.
    expect(new Set(ids.map((id) => id.slice(0, 12))).size).toBe(ids.length);
    await adm.post('/rooms', { _id: 'mine', name: 'Mallory', members: ['mallory'] });
    // The same chosen id sent into two rooms at once: exactly one message is stored.
    const chosen = `x${randomBytes(6).toString('hex')}`;
    const [a, b] = await Promise.all([
      as('mallory').post('/rooms/mine/message', { _id: chosen, message: 'squat', messageType: 'text' }),
      as('alice').post('/rooms/g/message', { _id: chosen, message: 'secret', messageType: 'text' }),
    ]);
    expect([a.status, b.status].filter((s) => s === 200)).toHaveLength(1);
    expect([code(a), code(b)].filter(Boolean)[0]).toMatch(/^(MESSAGE_EXISTS|MESSAGE_NOT_FOUND)$/);
    const inMine = (await as('mallory').get('/rooms/mine/messages/v3')).body.result.data.map((m: any) => m.message);
    const inG = (await as('alice').get('/rooms/g/messages/v3?limit=100')).body.result.data.filter((m: any) => m._id === chosen);
    expect(inMine.length + inG.length).toBe(1);
    expect(inMine).not.toContain('secret');
    // Deleting all of her room leaves the other room's history whole.
    expect((await adm.del('/rooms/mine/messages/_all')).status).toBe(200);
    expect((await as('alice').get('/rooms/g/messages/v3')).status).toBe(200);
  });

  it('5: ids that are Object.prototype names are refused and never pass a membership check', async () => {
    for (const id of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'a b', 'x/y', '']) {
      const r = await adm.post('/admin/clients', { _id: id, nickname: id, issueAccessToken: true });
      expect([id, r.status]).toEqual([id, 400]);
    }
    expect(({} as Record<string, unknown>).lastRead).toBeUndefined();
  });

  it('6: a direct room cannot be claimed ahead of its pair', async () => {
    // Mallory tries every id the pair's room could have, as a direct room with herself and as a group.
    for (const id of [oldDirectId('alice', 'bob'), `dm:${oldDirectId('alice', 'bob')}`]) {
      const direct = await as('mallory').post('/rooms/createAndJoin', { _id: id, invitee: 'alice' });
      expect(direct.status).toBe(400);
      const group = await as('mallory').post('/rooms/createAndJoin', { _id: id, invitee: ['alice'] });
      expect(group.status === 400 || group.status === 200).toBe(true);
    }
    const mine = await as('alice').post('/rooms/createAndJoin', { invitee: 'bob' });
    expect(mine.status).toBe(200);
    expect(mine.body.result.roomType).toBe('direct');
    expect(mine.body.result.members.map((m: { _id: string }) => m._id).sort()).toEqual(['alice', 'bob']);
    const his = await as('bob').post('/rooms/createAndJoin', { invitee: 'alice' });
    expect(his.status).toBe(200);
    expect(his.body.result._id).toBe(mine.body.result._id);
    // Mallory can neither open nor read it.
    expect((await as('mallory').get(`/rooms/${encodeURIComponent(mine.body.result._id)}`)).status).toBe(403);
  });

  it('7: private group ids are unguessable and private groups cannot be joined by strangers', async () => {
    const created = await adm.post('/rooms', { name: 'Private', members: ['alice', 'bob'] });
    expect(created.body.result._id).toMatch(/^[0-9a-f]{24}$/);
    const refused = await as('mallory').post(`/rooms/${created.body.result._id}/join`, {});
    expect([refused.status, code(refused)]).toEqual([403, 'ROOM_NOT_PUBLIC']);
    expect((await as('mallory').get(`/rooms/${created.body.result._id}/messages/v3`)).status).toBe(403);
    const open = await adm.post('/rooms', { name: 'Open', members: ['alice'], isPublic: true });
    expect(open.body.result.isPublic).toBe(true);
    expect((await as('mallory').post(`/rooms/${open.body.result._id}/join`, {})).status).toBe(200);
  });

  it('8: credentials checked at upgrade are checked again at CONNECT', async () => {
    const doomed = await t.createUser(app, 'doomed');
    const raw = await rawSocket(t.base, { clientKey: app.clientKey, token: doomed });
    await raw.next((f) => f.startsWith('0{'));
    expect((await adm.del('/admin/clients/doomed/token')).status).toBe(200);
    raw.send('40');
    const reply = await raw.next((f) => f.startsWith('4'));
    expect(reply.startsWith('44')).toBe(true);
    expect(reply).toContain('INVALID_TOKEN');
    raw.ws.terminate();
  });

  it('9: blocks hide the blockee in last messages and quoted replies; DM edits obey blocks and freezes', async () => {
    await adm.post('/rooms', { _id: 'b9', name: 'Blocks', members: ['alice', 'bob', 'carol'] });
    expect((await as('alice').post('/blockStatus/my/bob')).status).toBe(200);
    const s = await socketOf('alice');
    const rooms = collect<any>(s, 'room');
    const chats = collect<any>(s, 'chat message');
    const said = (await as('bob').post('/rooms/b9/message', { message: 'bob says hi', messageType: 'text' })).body.result._id;
    // The room list and room view do not show bob's words as the last message.
    const list = (await as('alice').get('/rooms')).body.result.data.find((r: any) => r._id === 'b9');
    expect(JSON.stringify(list)).not.toContain('bob says hi');
    expect(JSON.stringify((await as('alice').get('/rooms/b9')).body.result)).not.toContain('bob says hi');
    // A room event (a rename) reaches alice without bob's words.
    await adm.put('/rooms/b9', { name: 'Blocks renamed' });
    await until(() => rooms.some((r) => r.name === 'Blocks renamed'));
    expect(JSON.stringify(rooms)).not.toContain('bob says hi');
    // Carol quotes bob: alice gets carol's message, without the quote's text.
    await as('carol').post('/rooms/b9/message', { message: 'carol replies', messageType: 'text', reply: said });
    await until(() => chats.some((m) => m.message === 'carol replies'));
    expect(JSON.stringify(chats)).not.toContain('bob says hi');
    const history = (await as('alice').get('/rooms/b9/messages/v3')).body.result.data;
    expect(history.map((m: any) => m.message)).toContain('carol replies');
    expect(JSON.stringify(history)).not.toContain('bob says hi');
    // In a direct room, a block stops edits too; a frozen room stops members' edits.
    const dm = (await as('bob').post('/rooms/createAndJoin', { invitee: 'carol' })).body.result._id;
    const old = (await as('bob').post(`/rooms/${encodeURIComponent(dm)}/message`, { message: 'before', messageType: 'text' })).body.result._id;
    await as('carol').post('/blockStatus/my/bob');
    const edit = await as('bob').post(`/rooms/${encodeURIComponent(dm)}/message`, { _id: old, message: 'edited after the block', messageType: 'text' });
    expect([edit.status, code(edit)]).toEqual([403, 'BLOCKED']);
    const mine = (await as('carol').post('/rooms/b9/message', { message: 'to be edited', messageType: 'text' })).body.result._id;
    await adm.put('/rooms/b9', { status: 0 });
    const frozen = await as('carol').post('/rooms/b9/message', { _id: mine, message: 'edited while frozen', messageType: 'text' });
    expect([frozen.status, code(frozen)]).toEqual([403, 'ROOM_FROZEN']);
  });

  it('11: active content (SVG) is served as an attachment under a restrictive CSP', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>';
    const form = new FormData();
    form.append('extra', JSON.stringify({ roomId: 'g' }));
    form.append('file', new Blob([svg], { type: 'image/svg+xml' }), 'x.svg');
    const creds = { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice! };
    const up = await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: creds, body: form });
    expect(up.status).toBe(200);
    const id = ((await up.json()) as any).result._id;
    const res = await fetch(`${t.base}/files/chatserver-upload/${id}`, { headers: creds });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('10: file links stop working when the client key is replaced, and no link outlives the configured lifetime', async () => {
    const form = new FormData();
    form.append('extra', JSON.stringify({ roomId: 'g' }));
    form.append('file', new Blob(['hello'], { type: 'text/plain' }), 'a.txt');
    const creds = () => ({ 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice! });
    const id = ((await (await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: creds(), body: form })).json()) as any).result._id;
    const signed = async () => ((await (await fetch(`${t.base}/files/chatserver-upload/${id}?signedUrlOnly=1`, { headers: creds() })).json()) as any).result.url as string;
    const url = await signed();
    expect((await fetch(url)).status).toBe(200);
    // A link signed with the application's own secret, valid for a year: refused.
    const record = (await data.getApp(app.appId))!;
    const expires = Date.now() + 365 * 86_400_000;
    const key = record.fileSecret ?? `files:${record.signingSecret}`;
    const sig = createHmac('sha256', key).update(`${app.appId}/chatserver-upload/${id}/${expires}`).digest('base64url');
    const forged = await fetch(`${t.base}/files/chatserver-upload/${id}?app=${app.appId}&expires=${expires}&sig=${sig}`);
    expect(forged.status).toBe(403);
    // Replacing the client key rotates the link secret: the old link dies.
    expect((await adm.del('/admin/client-key')).status).toBe(200);
    const fresh = await adm.post('/admin/client-key');
    app.clientKey = fresh.body.result.clientKey;
    expect((await fetch(url)).status).toBe(403);
    expect((await fetch(await signed())).status).toBe(200);
  });

  it('12: a WebSocket upgrade to any other path is answered and closed', async () => {
    const request = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`;
    for (const path of ['/', '/other', '/rooms']) {
      const status = statusOf(await rawHttp(t.base, request(path), 3000));
      expect(status >= 400 && status < 500, `${path} → ${status}`).toBe(true);
    }
  });

  it('fuzz finding: an upload refused before its body is read does not crash the node (uWS)', async () => {
    const creds = { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice! };
    for (let i = 0; i < 5; i++) {
      // Answered 400 early; uWS may then reset the connection the client is still sending on.
      const r = await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: { ...creds, 'content-type': 'application/json' }, body: 'x'.repeat(512 * 1024) }).catch(() => undefined);
      if (r) expect(r.status).toBe(400);
      await r?.arrayBuffer().catch(() => undefined);
    }
    await alive();
  });

  it('13: an oversized message is refused before it is stored', async () => {
    const r = await as('alice').post('/rooms/g/message', { message: 'x'.repeat(90_000), messageType: 'text' });
    expect([r.status, code(r)]).toEqual([413, 'MESSAGE_TOO_LARGE']);
  });

  it('14: concurrent auth2 frames bind a socket once', async () => {
    const s = connect(t.base);
    open.push(s);
    await once(s, 'connect');
    const acks = await Promise.all([0, 1, 2, 3, 4].map(() => s.emitWithAck('auth2', tokens.carol, { 'IM-CLIENT-KEY': app.clientKey })));
    expect(acks.filter((a: any) => a.RC === 0).length).toBeGreaterThanOrEqual(1);
    const count = async () => (await adm.get('/admin/connection-count?client=carol&scope=node')).body.result.count;
    expect(await count()).toBe(1);
    s.disconnect();
    await until(async () => (await count()) === 0);
  });

  it('15: CONNECT retries on one socket are capped', async () => {
    const raw = await rawSocket(t.base);
    await raw.next((f) => f.startsWith('0{'));
    let refusals = 0;
    for (let i = 0; i < 10 && raw.ws.readyState === raw.ws.OPEN; i++) {
      raw.send(`40${JSON.stringify({ token: 'not-a-token', clientKey: app.clientKey })}`);
      if (await raw.next((f) => f.startsWith('44'), 1000).catch(() => undefined)) refusals++;
    }
    // Closed after the third refusal, long before the authentication deadline would close it.
    await Promise.race([raw.closed, sleep(2000).then(() => { throw new Error('still open'); })]);
    expect(refusals).toBe(3);
  });

  it('17: a concurrent pin never undoes an acknowledged recall', async () => {
    // The room's owner pins while the sender recalls, many times over.
    await adm.post('/rooms', { _id: 'p17', name: 'Pins', owner: 'carol', members: ['alice', 'carol'] });
    // The pin goes first and the recall a little later each time, so the recall's write lands
    // at every point of the pin's read-modify-write in turn.
    const rounds = 60;
    for (let i = 0; i < rounds; i++) {
      const id = (await as('alice').post('/rooms/p17/message', { message: `secret ${i}`, messageType: 'text' })).body.result._id;
      const pin = as('carol').post(`/messages/${id}/pin`);
      await sleep((i % 6) / 2);
      const recall = await as('alice').post('/rooms/p17/message', { _id: id, messageType: 'recall' });
      expect(recall.status).toBe(200);
      await pin;
    }
    const history = (await as('carol').get('/rooms/p17/messages/v3?limit=100')).body.result.data;
    expect(history).toHaveLength(rounds);
    for (const m of history) expect({ type: m.messageType, message: m.message }).toEqual({ type: 'recall', message: '' });
    const room = (await as('carol').get('/rooms/p17')).body.result;
    expect(room.pinnedMessage === null || room.pinnedMessage.messageType === 'recall').toBe(true);
  });

  it('17: GET /rooms?sort=__proto__ and out-of-range stats are 400, not 500', async () => {
    for (const sort of ['__proto__', 'constructor', 'toString']) expect((await as('alice').get(`/rooms?sort=${sort}`)).status).toBe(400);
    expect((await adm.get('/admin/stats?start=8640000000000001')).status).toBe(400);
    expect((await adm.get('/admin/stats?start=0')).status).toBe(400);
  });

  it('live sockets are closed when their token expires', async () => {
    const token = `expiring-${randomBytes(8).toString('hex')}`;
    // Bind a customer token, as IMKIT's api-doc "bind a token" does: {token, expirationDate}.
    expect((await adm.put('/admin/clients/bob/token', { token, expirationDate: Date.now() + 1500 })).status).toBe(200);
    const s = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token } });
    open.push(s);
    await once(s, 'connect');
    await once(s, 'disconnect', 5000);
  });
});

describe.each(COMBOS)('limits and quotas over %s on the %s store', (transport, store) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    t = await startTestServer(transport, {
      ...storeSettings(store, `q${randomBytes(4).toString('hex')}`),
      messagesPerMinutePerUser: 5,
      maxPageBytes: 4096,
      uploadBytesPerHourPerUser: 3000,
      maxUnauthenticatedSocketsPerAddress: 2,
      trustProxy: true,
      handshakesPerMinutePerAddress: 3,
    });
    app = await t.createApp();
    for (const id of ['alice', 'bob']) tokens[id] = await t.createUser(app, id);
    await admin(t.base, app).post('/rooms', { _id: 'q', name: 'Quota', members: ['alice', 'bob'] });
  });
  afterAll(() => t?.close());

  it('13: per-user message quota', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await user(t.base, app, tokens.alice!).post('/rooms/q/message', { message: `n${i}`, messageType: 'text' })).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });

  it('13: history pages stop at their byte budget', async () => {
    // The API key posts as bob (POST /messages) so the per-user quota does not apply.
    for (let i = 0; i < 12; i++) {
      await admin(t.base, app).post('/messages', { room: 'q', sender: 'bob', message: `${i}`.padEnd(1000, '.'), messageType: 'text' });
    }
    const page = await user(t.base, app, tokens.bob!).get('/rooms/q/messages/v3?limit=12');
    expect(page.status).toBe(200);
    expect(page.body.result.data.length).toBeGreaterThan(0);
    expect(page.body.result.data.length).toBeLessThan(6);
  });

  it('13: per-user upload quota', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const form = new FormData();
      form.append('file', new Blob(['x'.repeat(2000)], { type: 'text/plain' }), 'a.txt');
      const res = await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.bob! }, body: form });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('X-Forwarded-For: only the entry the trusted proxy appended counts', async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      // The client writes any leftmost entries it likes; the proxy appends 10.9.9.9.
      // Refused upgrade credentials are answered in CONNECT_ERROR (docs/protocol.md), with the code.
      outcomes.push(await handshakeOutcome(t.base, { clientKey: app.clientKey, token: 'wrong-token' }, { 'x-forwarded-for': `192.0.2.${i}, 10.9.9.9` }));
    }
    expect(outcomes).toEqual(['INVALID_TOKEN', 'INVALID_TOKEN', 'INVALID_TOKEN', 'RATE_LIMITED']);
  });

  it('unauthenticated sockets per address are capped', async () => {
    const first = await rawSocket(t.base);
    const second = await rawSocket(t.base);
    expect(await upgradeStatus(t.base, {})).toBe(429);
    first.ws.terminate();
    await first.closed;
    await until(async () => (await upgradeStatus(t.base, {})) === 101);
    second.ws.terminate();
  });
});
