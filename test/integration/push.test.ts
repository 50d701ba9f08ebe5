import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpReceiver, providerKeys, selfSignedCert, startApns, startFcm } from '../helpers/receivers.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once, sleep, until } from '../helpers/sockets.js';

/**
 * Push end to end against local providers: APNs (HTTP/2, TLS, ES256 provider token), FCM v1
 * (HTTPS, OAuth token from a local token endpoint that verifies the service account's JWT
 * assertion) and an IMKIT generic external push receiver. Offline members are notified;
 * online, muted and the sender are not; invalid tokens are removed.
 */
describe.each(TRANSPORTS)('push notifications over %s', (transport) => {
  const tls = selfSignedCert();
  const keys = providerKeys();
  let apns: Awaited<ReturnType<typeof startApns>>;
  let fcm: Awaited<ReturnType<typeof startFcm>>;
  const external = new HttpReceiver();
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const members = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

  beforeAll(async () => {
    apns = await startApns(tls, { keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'io.roomcast.test', publicKey: keys.apnsPublic });
    fcm = await startFcm(tls, { projectId: 'roomcast-test', clientEmail: 'push@roomcast-test.iam.gserviceaccount.com', publicKey: keys.fcmPublic });
    await external.start();
    t = await startTestServer(transport, {
      // The 1,500-member test creates its users with the API key faster than IMKIT's 1000/min.
      restRequestsPerMinutePerApiKey: 0,
      outboxPollMs: 20, outboxRetryBaseMs: 40, outboxRetryMaxMs: 200,
      apnsUrl: apns.url, fcmBaseUrl: fcm.baseUrl, fcmTokenUrl: fcm.tokenUrl, pushCaFile: tls.certFile,
    });
    app = await t.createApp('push');
    for (const id of members) tokens[id] = await t.createUser(app, id, id.toUpperCase());
    const configured = await admin(t.base, app).put('/admin/delivery', {
      externalPush: { url: external.url },
      apns: { keyId: 'ABC123DEFG', teamId: 'TEAM123456', privateKey: keys.apnsPrivate, topic: 'io.roomcast.test' },
      // The service account key file's fields, as Google issues it.
      fcm: { type: 'service_account', project_id: 'roomcast-test', private_key_id: 'k1', private_key: keys.fcmPrivate, client_email: 'push@roomcast-test.iam.gserviceaccount.com', token_uri: 'https://oauth2.googleapis.com/token' },
    });
    expect(configured.status).toBe(200);
    expect(JSON.stringify(configured.body.result)).not.toContain('PRIVATE KEY');
    external.secret = configured.body.result.webhookSecret;
    await admin(t.base, app).post('/rooms', { _id: 'team', name: 'Team', members });
    // Devices as the SDKs register them: Flutter im_user_request.dart / Vue SDK {token, type, deviceId}.
    const subscribe = (who: string, body: Record<string, string>) => user(t.base, app, tokens[who]!).post('/me/subscribe', body);
    for (const [who, body] of [
      ['bob', { token: 'bob-fcm-token', type: 'fcm', deviceId: 'bob-android' }],
      ['bob', { token: 'b0b1a2c3d4e5f60718293a4b5c6d7e8f', type: 'ios', deviceId: 'bob-iphone' }],
      ['carol', { token: 'carol-fcm-token', type: 'fcm', deviceId: 'carol-phone' }],
      ['dave', { token: 'dave-fcm-token', type: 'fcm', deviceId: 'dave-phone' }],
      ['erin', { token: 'dead-fcm-token', type: 'fcm', deviceId: 'erin-phone' }],
      ['erin', { token: 'deadbeef00', type: 'ios', deviceId: 'erin-iphone' }],
      ['frank', { token: 'frank-fcm-token', type: 'fcm', deviceId: 'frank-phone' }],
    ] as const) {
      const res = await subscribe(who, body);
      expect(res.status).toBe(200);
      expect(res.body.result).toEqual({});
    }
    // The API key may register for a user (api-doc Me-Subscribe.md: clientId).
    expect((await admin(t.base, app).post('/me/subscribe', { token: 'alice-fcm', type: 'fcm', deviceId: 'alice-phone', clientId: 'alice' })).status).toBe(200);
    fcm.dead.add('dead-fcm-token');
    apns.dead.add('deadbeef00');
    expect((await user(t.base, app, tokens.dave!).post('/me/mute/team')).status).toBe(200);
    expect((await user(t.base, app, tokens.frank!).post('/blockStatus/my/alice')).status).toBe(200);
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    await t?.close();
    await apns?.close();
    await fcm?.close();
    await external.stop();
    tls.cleanup();
  });

  const fcmTo = (token: string) => fcm.requests.filter((r) => r.body?.message?.token === token);
  const apnsTo = (token: string) => apns.requests.filter((r) => r.path === `/3/device/${token}`);
  const online = async (who: string) => {
    const s = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] } });
    open.push(s);
    await once(s, 'connect');
    return s;
  };

  it('notifies offline members through APNs, FCM v1 and external push; not the sender, an online, a muted or a blocking member; removes invalid tokens', async () => {
    await online('carol');
    const sent = await user(t.base, app, tokens.alice!).post('/rooms/team/message', { message: 'Lunch at noon?', messageType: 'text' });
    expect(sent.status).toBe(200);
    const id = sent.body.result._id;
    await until(() => fcmTo('bob-fcm-token').length === 1 && apnsTo('b0b1a2c3d4e5f60718293a4b5c6d7e8f').length === 1 && external.received.length === 1 && fcmTo('dead-fcm-token').length === 1 && apnsTo('deadbeef00').length === 1);

    // APNs: headers and JWT checked by the server; the payload per IMKIT's localisation format.
    const [toBob] = apnsTo('b0b1a2c3d4e5f60718293a4b5c6d7e8f');
    expect(toBob!.problems).toEqual([]);
    expect(toBob!.headers['apns-topic']).toBe('io.roomcast.test');
    expect(toBob!.headers['apns-push-type']).toBe('alert');
    expect(toBob!.body.aps).toEqual({ alert: { title: 'Team', 'loc-key': 'im_loc_text', 'loc-args': ['ALICE', 'Lunch at noon?'] }, badge: 1, sound: 'default', 'mutable-content': 1 });
    expect(toBob!.body).toMatchObject({ room: 'team', messageID: id, payload: { _id: id, message: 'Lunch at noon?' } });

    // FCM v1: OAuth bearer from the token endpoint (assertion verified), message format.
    expect(fcm.tokenRequests.length).toBeGreaterThanOrEqual(1);
    expect(fcm.tokenRequests.every((r) => r.problems.length === 0)).toBe(true);
    const [fcmBob] = fcmTo('bob-fcm-token');
    expect(fcmBob!.problems).toEqual([]);
    const m = fcmBob!.body.message;
    expect(m.data).toMatchObject({ 'loc-key': 'im_loc_text', 'loc-args': JSON.stringify(['ALICE', 'Lunch at noon?']), badge: '1', room: 'team', messageID: id, redirect: '/chat' });
    expect(JSON.parse(m.data.payload)).toMatchObject({ _id: id, room: 'team' });
    expect(m.android.notification).toMatchObject({ body_loc_key: 'im_loc_text', body_loc_args: ['ALICE', 'Lunch at noon?'], click_action: 'push_chatroom', notification_count: 1 });
    expect(m.apns.payload.aps).toMatchObject({ badge: 1, alert: { 'loc-key': 'im_loc_text' } });

    // External push, IMKIT's generic format: the message flattened, roomName, pushToClients.
    const [ext] = external.received;
    expect(ext!.signed).toBe(true);
    expect(ext!.body).toMatchObject({ _id: id, message: 'Lunch at noon?', room: 'team', roomName: 'Team', sender: { _id: 'alice' } });
    expect(ext!.body.pushToClients.sort()).toEqual(['bob', 'erin']);

    // Not the sender, not carol (online), not dave (muted), not frank (blocked alice).
    await sleep(200);
    expect(fcmTo('alice-fcm')).toEqual([]);
    expect(fcmTo('carol-fcm-token')).toEqual([]);
    expect(fcmTo('dave-fcm-token')).toEqual([]);
    expect(fcmTo('frank-fcm-token')).toEqual([]);

    // Erin's tokens were reported invalid: removed, so the next message goes to bob only.
    const deliveries = async () => (await admin(t.base, app).get('/admin/deliveries?limit=100')).body.result.data as any[];
    await until(async () => (await deliveries()).every((d) => d.status === 'delivered'));
    const second = await user(t.base, app, tokens.alice!).post('/rooms/team/message', { message: 'Or at one?' });
    await until(() => fcmTo('bob-fcm-token').length === 2 && external.received.length === 2);
    await until(async () => (await deliveries()).every((d) => d.status === 'delivered'));
    expect(fcmTo('dead-fcm-token')).toHaveLength(1);
    expect(apnsTo('deadbeef00')).toHaveLength(1);
    // Badge = bob's unread total, now two.
    expect(fcmTo('bob-fcm-token')[1]!.body.message.data).toMatchObject({ badge: '2', messageID: second.body.result._id });
  });

  it('honours push:false on a send, and sends POST /push/push2clients to everyone named, online or not', async () => {
    const before = { fcm: fcmTo('bob-fcm-token').length, ext: external.received.length };
    expect((await user(t.base, app, tokens.alice!).post('/rooms/team/message', { message: 'quiet', push: false })).status).toBe(200);
    // api-doc push/push-to-clients.md's body.
    const custom = await admin(t.base, app).post('/push/push2clients', {
      clients: ['bob', 'carol'],
      payload: { type: 'marketing', alert: { 'loc-key': 'PROMO', 'loc-args': ['50%'] }, badge: 7, sound: 'default', title: 'Sale', body: 'Half price', collapseKey: 'promo' },
    });
    expect(custom.status).toBe(200);
    expect(custom.body.result).toEqual({});
    const promoOnApns = () => apnsTo('b0b1a2c3d4e5f60718293a4b5c6d7e8f').find((r) => r.body?.aps?.alert?.['loc-key'] === 'PROMO');
    await until(() => fcmTo('carol-fcm-token').length === 1 && fcmTo('bob-fcm-token').length === before.fcm + 1 && external.received.length === before.ext + 1 && promoOnApns() !== undefined);
    const promo = fcmTo('bob-fcm-token').at(-1)!.body.message;
    expect(promo.data).toMatchObject({ type: 'marketing', title: 'Sale', body: 'Half price', badge: '7', 'loc-key': 'PROMO' });
    expect(promo.android).toMatchObject({ collapse_key: 'promo' });
    const ios = promoOnApns()!;
    expect(ios.problems).toEqual([]);
    expect(ios.body.aps).toMatchObject({ alert: { 'loc-key': 'PROMO', 'loc-args': ['50%'] }, badge: 7 });
    expect(external.received.at(-1)!.body).toMatchObject({ type: 'marketing', pushToClients: ['bob', 'carol'] });
    // Nothing for the push:false message reached any provider.
    expect(fcm.requests.some((r) => r.body?.message?.data?.body?.includes('quiet'))).toBe(false);
    expect(external.received.some((r) => r.body?.message === 'quiet')).toBe(false);
    const bad = await admin(t.base, app).post('/push/push2clients', { clients: [] , payload: {} });
    expect(bad.status).toBe(400);
    expect((await user(t.base, app, tokens.bob!).post('/push/push2clients', { clients: ['bob'], payload: {} })).status).toBe(403);
  });

  it('unsubscribes a device (Flutter/Vue: {type, deviceId})', async () => {
    const res = await user(t.base, app, tokens.bob!).post('/me/unsubscribe', { type: 'fcm', deviceId: 'bob-android' });
    expect(res.status).toBe(200);
    expect(res.body.result).toEqual({ n: 1, ok: 1 });
    expect((await user(t.base, app, tokens.bob!).post('/me/unsubscribe', { type: 'fcm', deviceId: 'bob-android' })).body.result).toEqual({ n: 0, ok: 1 });
    const missing = await admin(t.base, app).post('/me/subscribe', { token: 'x', type: 'fcm', deviceId: 'd' });
    expect(missing.status).toBe(400);
    const badType = await user(t.base, app, tokens.bob!).post('/me/subscribe', { token: 'x', type: 'pager', deviceId: 'd' });
    expect(badType.status).toBe(400);
    const count = fcmTo('bob-fcm-token').length;
    await user(t.base, app, tokens.alice!).post('/rooms/team/message', { message: 'after unsubscribe' });
    await until(() => apnsTo('b0b1a2c3d4e5f60718293a4b5c6d7e8f').some((r) => r.body?.payload?.message === 'after unsubscribe'));
    expect(fcmTo('bob-fcm-token')).toHaveLength(count);
  });

  it('fans a 1,500-member room out in batches of ROOMCAST_PUSH_BATCH_SIZE (500), off the send path', async () => {
    const big = await t.createApp('big');
    const users = Array.from({ length: 1500 }, (_, i) => `u${i}`);
    for (let i = 0; i < users.length; i += 50) await Promise.all(users.slice(i, i + 50).map((u) => t.createUser(big, u)));
    const receiver = await new HttpReceiver().start();
    try {
      receiver.secret = (await admin(t.base, big).put('/admin/delivery', { externalPush: { url: receiver.url } })).body.result.webhookSecret;
      await admin(t.base, big).post('/rooms', { _id: 'hall', members: users.slice(0, 1000) });
      expect((await admin(t.base, big).post('/rooms/hall/members', { invitees: users.slice(1000) })).status).toBe(200);
      const sender = await t.createUser(big, 'u0');
      const started = performance.now();
      const sent = await user(t.base, big, sender).post('/rooms/hall/message', { message: 'all hands' });
      const sendMs = performance.now() - started;
      expect(sent.status).toBe(200);
      await until(() => receiver.received.reduce((n, r) => n + r.body.pushToClients.length, 0) === 1499, 15_000);
      const fanOutMs = performance.now() - started;
      expect(receiver.received.map((r) => r.body.pushToClients.length).sort()).toEqual([499, 500, 500]);
      expect(new Set(receiver.received.flatMap((r) => r.body.pushToClients)).size).toBe(1499);
      expect(receiver.received.every((r) => r.signed && r.body.message === 'all hands')).toBe(true);
      console.log(`[push fan-out ${transport}] send ${sendMs.toFixed(0)} ms, 1499 recipients in 3 batches ${fanOutMs.toFixed(0)} ms`);
    } finally {
      await receiver.stop();
    }
  });
});
