import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { type RoomcastServer, startServer } from '../../src/server.js';
import { admin, OPERATOR_SECRET, type TestApp, TRANSPORTS, user } from '../helpers/server.js';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';

/**
 * Issue #11 item 10: when the store fails, the failing command's arguments (whole records,
 * the application's signing secrets among them) must not reach the log, even at `trace`.
 * The store is PostgreSQL (a schema of its own) whose tables are taken away under the server.
 */
describe.each(TRANSPORTS)('no secret in the log when the store fails, over %s', (transport) => {
  let data: Store;
  const schema = freshSchema();
  let server: RoomcastServer;
  let base: string;
  let app: TestApp;
  let token: string;
  const lines: string[] = [];

  beforeAll(async () => {
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', transport, operatorSecret: OPERATOR_SECRET, logLevel: 'trace', demo: false,
      databaseUrl: SHARED_DATABASE_URL, databaseSchema: schema, filesDir: mkdtempSync(path.join(tmpdir(), 'roomcast-logs-')), nodeId: `l${randomBytes(4).toString('hex')}`,
    });
    data = (await openStore(config, createLogger('silent'))).store;
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    server = await startServer(config, createLogger('trace', sink), { store: data });
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
  });

  it('logs the failures by name and message only', async () => {
    const record = (await data.getApp(app.appId))!;
    const secrets = [record.signingSecret, record.fileSecret!, app.apiKey, app.clientKey, token];
    const db = new pg.Client({ connectionString: SHARED_DATABASE_URL });
    await db.connect();
    // Every table of the server's schema goes away: each store call fails from now on.
    const tables = (await db.query('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema])).rows.map((r: { tablename: string }) => r.tablename);
    for (const table of tables) await db.query(`ALTER TABLE "${schema}"."${table}" RENAME TO "${table}_gone"`);
    await db.end();
    const refused = [
      await admin(base, app).put('/admin/settings', { name: 'renamed' }),
      await admin(base, app).post('/admin/clients', { _id: 'bob', nickname: 'Bob', issueAccessToken: true }),
      await user(base, app, token).post('/rooms/r/message', { message: 'hello', messageType: 'text' }),
    ];
    for (const r of refused) expect(r.status).toBeGreaterThanOrEqual(500);
    const log = lines.join('');
    expect(log).toMatch(/"level":50/);
    for (const secret of secrets) expect(log).not.toContain(secret);
  });
});
