import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once, until } from '../helpers/sockets.js';

describe.each(TRANSPORTS)('user status over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer(transport);
    app = await t.createApp();
    for (const id of ['alice', 'bob']) tokens[id] = await t.createUser(app, id);
    await admin(t.base, app).post('/rooms', { _id: 'team', name: 'Team', members: ['alice', 'bob'] });
  });
  afterAll(() => t.close());

  const me = async (who: string) => (await user(t.base, app, tokens[who]!).get('/me')).body.result;

  it('isSocketConnected, lastLoginTimeMS and lastActiveTimeMS follow live sockets', async () => {
    expect(await me('alice')).toMatchObject({ isSocketConnected: false, lastLoginTimeMS: null });
    const before = Date.now();
    const s = connect(t.base, { auth: { clientKey: app.clientKey, token: tokens.alice } });
    await once(s, 'connect');
    await until(async () => (await me('alice')).isSocketConnected === true);
    const online = await me('alice');
    expect(online.lastLoginTimeMS).toBeGreaterThanOrEqual(before);
    expect(online.lastActiveTimeMS).toBeGreaterThanOrEqual(online.lastLoginTimeMS);
    // Visible to room members and to the administrator.
    const members = (await user(t.base, app, tokens.bob!).get('/rooms/team')).body.result.members;
    expect(members.find((m: any) => m.id === 'alice')).toMatchObject({ isSocketConnected: true });
    expect(members.find((m: any) => m.id === 'bob')).toMatchObject({ isSocketConnected: false });
    const listed = (await admin(t.base, app).get('/admin/clients')).body.result.data;
    expect(listed.find((c: any) => c.id === 'alice')).toMatchObject({ isSocketConnected: true });
    expect((await admin(t.base, app).get('/admin/clients/alice')).body.result.isSocketConnected).toBe(true);

    s.disconnect();
    const closedAt = Date.now();
    await until(async () => (await me('alice')).isSocketConnected === false);
    const offline = await me('alice');
    expect(offline.lastActiveTimeMS).toBeGreaterThanOrEqual(closedAt - 50);
    expect(offline.lastActiveTimeMS).toBeLessThanOrEqual(Date.now());
    expect(offline.lastLoginTimeMS).toBe(online.lastLoginTimeMS);
  });

  it('a profile update reaches a connected room member as a `client` event', async () => {
    const s = connect(t.base, { auth: { clientKey: app.clientKey, token: tokens.bob } });
    await once(s, 'connect');
    const update = once<any>(s, 'client');
    await user(t.base, app, tokens.alice!).post('/me', { nickname: 'Alice Liddell', avatarUrl: 'https://img.example/alice.png', description: 'down the rabbit hole', mood: 'curious' });
    expect((await update)[0]).toMatchObject({ _id: 'alice', nickname: 'Alice Liddell', avatarUrl: 'https://img.example/alice.png', description: 'down the rabbit hole', mood: 'curious' });
    s.disconnect();
  });
});
