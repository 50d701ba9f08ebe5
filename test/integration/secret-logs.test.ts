import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { type RoomcastServer, startServer } from '../../src/server.js';
import { admin, OPERATOR_SECRET, type TestApp, TRANSPORTS, user } from '../helpers/server.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';

/**
 * Issue #11 item 10: when Redis refuses writes, the failing command's arguments (whole records,
 * the application's signing secrets among them) must not reach the log, even at `trace`.
 */
describe.each(TRANSPORTS)('no secret in the log when the store fails, over %s', (transport) => {
  let redis: RedisProcess;
  let server: RoomcastServer;
  let base: string;
  let app: TestApp;
  let token: string;
  const lines: string[] = [];

  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', transport, operatorSecret: OPERATOR_SECRET, logLevel: 'trace', demo: false,
      redisUrl: redis.url, redisPrefix: `l${randomBytes(4).toString('hex')}`,
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    server = await startServer(config, createLogger('trace', sink));
    base = `http://127.0.0.1:${server.port}`;
    const res = await fetch(`${base}/operator/apps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'logs' }),
    });
    const created = ((await res.json()) as any).result;
    app = { appId: created.id, apiKey: created.apiKey, clientKey: created.clientKey };
    token = (await admin(base, app).post('/admin/clients', { _id: 'alice', issueAccessToken: true })).body.result.token;
    await admin(base, app).post('/rooms', { _id: 'r', members: ['alice'] });
  });
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
  });

  it('logs the failures by name and message only', async () => {
    const record = (await server.core.store.getApp(app.appId))!;
    const secrets = [record.signingSecret, record.fileSecret!, app.apiKey, app.clientKey, token];
    const raw = new Redis(redis.url);
    // Redis refuses every write from now on (OOM), as a full or misconfigured Redis does.
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    await raw.config('SET', 'maxmemory', '1');
    try {
      const refused = [
        await admin(base, app).put('/admin/settings', { name: 'renamed' }),
        await admin(base, app).post('/admin/clients', { _id: 'bob', nickname: 'Bob', issueAccessToken: true }),
        await user(base, app, token).post('/rooms/r/message', { message: 'hello', messageType: 'text' }),
      ];
      for (const r of refused) expect(r.status).toBe(500);
    } finally {
      await raw.config('SET', 'maxmemory', '0');
      raw.disconnect();
    }
    const log = lines.join('');
    expect(log).toContain('unhandled error in request');
    expect(log).toContain('OOM');
    for (const secret of secrets) expect(log).not.toContain(secret);
  });
});
