import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from '../../src/ratelimit/limiter.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, TWO_NODES, user } from '../helpers/server.js';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { type RedisProcess, startRedis } from '../helpers/redis.js';
import { until } from '../helpers/sockets.js';

const LIMIT = 5;

/** Counts are per clock minute: start a run well inside one, so it cannot straddle a window edge. */
const insideOneWindow = () => until(() => Date.now() % 60_000 < 55_000, 10_000);

/** REST rate limits: per API key and per user, 429 RATE_LIMIT_EXCEEDED with retryAfter, cluster-wide on Redis. */
describe.each(TRANSPORTS)('REST rate limits over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  let other: TestApp;

  beforeAll(async () => {
    t = await startTestServer(transport, { restRequestsPerMinutePerApiKey: LIMIT, restRequestsPerMinutePerUser: LIMIT });
    app = await t.createApp();
    other = await t.createApp('other');
  });
  afterAll(() => t.close());

  it('the API key gets its limit per minute, then 429 with retryAfter and Retry-After; other apps are unaffected', async () => {
    await insideOneWindow();
    const adm = admin(t.base, app);
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) statuses.push((await adm.get('/admin/clients')).status);
    // createApp spent none of the key's budget (operator route); the setup made no API-key calls.
    expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(200));
    const refused = await adm.get('/admin/clients');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ RC: 429, error: { code: 'RATE_LIMIT_EXCEEDED', retryAfter: expect.any(Number) } });
    expect(refused.body.error.retryAfter).toBeGreaterThanOrEqual(1);
    expect(refused.body.error.retryAfter).toBeLessThanOrEqual(60);
    expect(Number(refused.headers.get('retry-after'))).toBe(refused.body.error.retryAfter);
    expect((await admin(t.base, other).get('/admin/clients')).status).toBe(200);
  });

  it('each user has a budget of their own, apart from the API key\'s', async () => {
    await insideOneWindow();
    // Tokens come from the other app's API key, whose budget is still nearly whole.
    const adm = admin(t.base, other);
    const alice = (await adm.post('/admin/clients', { _id: 'alice', issueAccessToken: true })).body.result.token;
    const bob = (await adm.post('/admin/clients', { _id: 'bob', issueAccessToken: true })).body.result.token;
    const as = (tok: string) => user(t.base, other, tok);
    for (let i = 0; i < LIMIT; i++) expect((await as(alice).get('/me')).status).toBe(200);
    const refused = await as(alice).get('/me');
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 429, code: 'RATE_LIMIT_EXCEEDED' });
    expect((await as(bob).get('/me')).status).toBe(200);
  });
});

describe('REST rate limits across a cluster (two nodes, one PostgreSQL, one Redis)', () => {
  let redis: RedisProcess;
  let nodes: TestServer[];
  let app: TestApp;

  beforeAll(async () => {
    redis = await startRedis();
    const prefix = `rl${Math.random().toString(36).slice(2, 8)}`;
    // A cluster: one PostgreSQL schema for data, one Redis for bus, presence and the rate counts.
    const schema = freshSchema();
    nodes = [];
    for (const transport of TWO_NODES) {
      nodes.push(await startTestServer(transport, { redisUrl: redis.url, redisPrefix: prefix, databaseUrl: SHARED_DATABASE_URL, databaseSchema: schema, restRequestsPerMinutePerApiKey: LIMIT }));
    }
    app = await nodes[0]!.createApp();
  });
  afterAll(async () => {
    for (const n of nodes ?? []) await n.close();
    await redis?.stop();
  });

  it('requests through either node count against one budget', async () => {
    await insideOneWindow();
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT * 2; i++) statuses.push((await admin(nodes[i % 2]!.base, app).get('/admin/clients')).status);
    expect(statuses).toEqual([...Array(LIMIT).fill(200), ...Array(LIMIT).fill(429)]);
  });
});

describe('memory rate limiter', () => {
  it('counts per fixed window and resets with the next one', async () => {
    let now = 60_000 * 10 + 59_000;
    const limiter = new MemoryRateLimiter(() => now);
    expect(await limiter.hit('a', 'k', 2, 60_000)).toEqual({ allowed: true, retryAfterMs: 1000 });
    expect((await limiter.hit('a', 'k', 2, 60_000)).allowed).toBe(true);
    expect(await limiter.hit('a', 'k', 2, 60_000)).toEqual({ allowed: false, retryAfterMs: 1000 });
    expect((await limiter.hit('b', 'k', 2, 60_000)).allowed).toBe(true);
    now += 1000;
    expect(await limiter.hit('a', 'k', 2, 60_000)).toEqual({ allowed: true, retryAfterMs: 60_000 });
  });
});
