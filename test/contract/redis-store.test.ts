import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageRecord, RoomRecord } from '../../src/core/models.js';
import { isImError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/store/redis.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { until } from '../helpers/sockets.js';

/** What only the Redis store has to show: layout, atomicity across clients, faults, durability. */
describe('RedisStore beyond the contract', () => {
  let redis: RedisProcess;
  let raw: Redis;
  const open: RedisStore[] = [];
  const store = async (prefix: string) => {
    const s = await RedisStore.open(redis.url, { prefix });
    open.push(s);
    return s;
  };
  const prefix = () => `t${randomBytes(5).toString('hex')}`;
  const room = (id: string, members: string[]): RoomRecord => ({
    id, roomType: 'group', managers: [], members,
    memberState: Object.fromEntries(members.map((m) => [m, { joinedAt: 1 }])),
    roomTags: [], status: 1, systemMessage: false, lastActivityAt: 1, createdAt: 1, updatedAt: 1,
  });
  const message = (id: string, roomId: string, sender = 'u1'): MessageRecord => ({
    id, room: roomId, sender, messageType: 'text', message: id, fields: {}, createdAt: Date.now(), updatedAt: Date.now(),
  });

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('keeps every key under its prefix, with one hash tag per application (one Cluster slot)', async () => {
    const p = prefix();
    const s = await store(p);
    const weird = 'we{ird}:app*?';
    for (const app of ['plain', weird]) {
      await s.putApp({ id: app, name: app, domains: [], apiKeyHash: `h-${app}`, signingSecret: 's', clientKey: null, createdAt: 1 });
      await s.putUser(app, { id: 'u1', custom: {}, createdAt: 1, updatedAt: 1 });
      await s.putToken(app, { hash: 'th', userId: 'u1', expiresAt: 9e15, issued: true, createdAt: 1 });
      await s.createRoom(app, room('r:1', ['u1']));
      await s.addMessage(app, message(`m-${app}`, 'r:1'));
      await s.putPref(app, 'u1', { key: 'k', data: 1 });
      await s.putBlock(app, { blocker: 'u1', blockee: 'u2', createdAt: 1 });
      await s.putFile(app, { id: 'f', bucket: 'b', filename: 'f', mimetype: 'x', length: 1, md5: 'm', extra: {}, uploadedAt: 1 });
    }
    const keys = await raw.keys(`${p}:*`);
    const tags = new Set<string>();
    for (const key of keys) {
      const m = /^[^:]+:(global:\{g\}|app:\{([^{}:*?]+)\}):[a-z-]+(:.*)?$/.exec(key);
      expect(m, key).not.toBeNull();
      tags.add(/\{([^}]*)\}/.exec(key)![1]!);
    }
    expect([...tags].sort()).toEqual(['g', 'plain', encodeURIComponent(weird).replace(/\*/g, '%2A')].sort());
    // Deleting one application removes its keys and nothing else.
    expect(await s.deleteApp(weird)).toBe(true);
    const left = await raw.keys(`${p}:*`);
    expect(left.some((k) => k.includes('we%7Bird'))).toBe(false);
    expect(left.filter((k) => k.includes('{plain}')).length).toBeGreaterThan(5);
    expect((await s.getRoom('plain', 'r:1'))?.lastMessageId).toBe('m-plain');
  });

  it('updateRoom is an atomic read-modify-write across clients (no lost update)', async () => {
    const p = prefix();
    const [a, b] = [await store(p), await store(p)];
    await a.createRoom('app', room('r1', ['owner']));
    const add = (s: RedisStore, id: string) =>
      s.updateRoom('app', 'r1', (r) => {
        r.members.push(id);
        r.memberState[id] = { joinedAt: 2 };
        return r;
      });
    const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
    // Messages land meanwhile: they bump the room's version and must not be lost either.
    await Promise.all([
      ...ids.map((id, i) => add(i % 2 ? a : b, id)),
      ...Array.from({ length: 20 }, (_, i) => (i % 2 ? b : a).addMessage('app', message(`msg${i}`, 'r1', 'owner'))),
    ]);
    const final = (await a.getRoom('app', 'r1'))!;
    expect(final.members.slice().sort()).toEqual(['owner', ...ids].sort());
    expect(Object.keys(final.memberState).sort()).toEqual(['owner', ...ids].sort());
    for (const id of ids) expect(await b.userRoomIds('app', id)).toEqual(['r1']);
    expect(await a.countMessages('app', 'r1')).toBe(20);
    const newest = (await a.listMessages('app', 'r1', { direction: 'older', includeAnchor: false, limit: 1 }))![0]!;
    expect(final.lastMessageId).toBe(newest.id);
    expect(final.memberState.owner!.lastRead).toBe(newest.id);
  });

  it('an update that keeps losing the compare-and-set is 409 UPDATE_CONFLICT, not a plain error (a 500)', async () => {
    const p = prefix();
    const s = await RedisStore.open(redis.url, { prefix: p, maxUpdateAttempts: 1 });
    open.push(s);
    await s.createRoom('app', room('r1', ['owner']));
    // Pipelined on one connection: every read lands before any write, so all but one lose.
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => s.updateRoom('app', 'r1', (r) => ({ ...r, name: `n${i}` }))),
    );
    const lost = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    expect(lost.length).toBe(4);
    for (const err of lost) expect(isImError(err) && err.status === 409 && err.code === 'UPDATE_CONFLICT').toBe(true);
  });

  it('fails fast with STORE_UNAVAILABLE (503) while Redis is down, and keeps acknowledged writes across a crash', async () => {
    const p = prefix();
    const s = await store(p);
    await s.createRoom('app', room('r1', ['u1']));
    for (let i = 0; i < 20; i++) await s.addMessage('app', message(`m${i}`, 'r1'));
    await redis.kill('SIGKILL');
    await until(() => !s.ready(), 3000);
    const started = Date.now();
    const err = await s.addMessage('app', message('lost', 'r1')).catch((e: unknown) => e);
    expect(isImError(err) && err.status === 503 && err.code === 'STORE_UNAVAILABLE').toBe(true);
    expect(Date.now() - started).toBeLessThan(500);
    await redis.restart();
    await until(() => s.ready(), 5000);
    expect(await s.countMessages('app', 'r1')).toBe(20);
    expect((await s.getRoom('app', 'r1'))!.lastMessageId).toBe('m19');
    await s.addMessage('app', message('after', 'r1'));
    expect(await s.countMessages('app', 'r1')).toBe(21);
    await until(() => raw.status === 'ready', 5000);
  });
});
