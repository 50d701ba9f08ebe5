import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresProcess } from '../helpers/postgres.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { sleep, until } from '../helpers/sockets.js';

/**
 * PostgreSQL restarted under traffic, on a server this test starts itself (never the
 * machine's shared one): requests that cannot be stored fail at once with 503
 * STORE_UNAVAILABLE, /readyz says so, the node reconnects by itself, and every
 * acknowledged message is in history afterwards.
 */
describe.each(TRANSPORTS)('a node on PostgreSQL when PostgreSQL restarts, over %s', (transport) => {
  let pg: PostgresProcess;
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    pg = await startPostgres();
    t = await startTestServer(transport, { databaseUrl: pg.url });
    app = await t.createApp('faults');
    for (const id of ['alice', 'bob']) tokens[id] = await t.createUser(app, id);
    await admin(t.base, app).post('/rooms', { _id: 'lobby', members: ['alice', 'bob'] });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await pg?.stop();
  });

  const ready = async () => (await fetch(`${t.base}/readyz`)).status;

  it('fails fast with 503 while it is away, recovers by itself, loses no acknowledged message', async () => {
    const acked: string[] = [];
    const refusals: { code: string; ms: number }[] = [];
    let stop = false;
    let attempts = 0;
    // Four senders in a loop, bounded in count. The body is the message JSON the Flutter SDK
    // posts (imkit-flutter-sdk lib/services/network/api/requests/im_message_request.dart, sendMessage).
    const sender = async (who: string) => {
      while (!stop && acked.length < 900 && attempts++ < 20_000) {
        const began = Date.now();
        const res = await user(t.base, app, tokens[who]!).post('/rooms/lobby/message', {
          roomId: 'lobby', messageType: 'text', message: `m${attempts}`, reply: null, mentions: [],
        });
        if (res.status === 200) acked.push(res.body.result._id);
        else {
          refusals.push({ code: res.body?.error?.code ?? String(res.status), ms: Date.now() - began });
          await sleep(10);
        }
      }
    };
    const loops = [sender('alice'), sender('bob'), sender('alice'), sender('bob')];
    await until(() => acked.length >= 40, 10_000);
    await pg.kill('SIGINT'); // fast shutdown: what a restart does to connected clients
    await until(async () => (await ready()) === 503, 5000);
    await until(() => refusals.length >= 20, 5000);
    await pg.restart();
    await until(async () => (await ready()) === 200, 15_000);
    const afterRestart = acked.length;
    await until(() => acked.length >= Math.min(900, afterRestart + 40), 15_000);
    stop = true;
    await Promise.all(loops);

    expect(refusals.length).toBeGreaterThan(0);
    expect(new Set(refusals.map((r) => r.code))).toEqual(new Set(['STORE_UNAVAILABLE']));
    // "At once": no refusal waited for a connection timeout.
    expect(Math.max(...refusals.map((r) => r.ms))).toBeLessThan(2000);
    const history = await user(t.base, app, tokens.alice!).get('/rooms/lobby/messages/v3?limit=1000');
    expect(history.status).toBe(200);
    const stored = new Set(history.body.result.data.map((m: { _id: string }) => m._id));
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
  }, 60_000);
});
