import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import { api, admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';
import { collect, connect, once, until } from '../helpers/sockets.js';


/** API-key operations and sign-in, with bodies from IMKIT's docs (imkit/api-doc, cited per test). */
describe.each(TRANSPORTS)('IMKIT admin operations over %s', (transport) => {
  let t: TestServer;
  let sandbox: TestServer;
  let app: TestApp;
  let sandboxApp: TestApp;

  beforeAll(async () => {
    t = await startTestServer(transport);
    sandbox = await startTestServer(transport, { sandboxSignIn: true });
    app = await t.createApp();
    sandboxApp = await sandbox.createApp();
    const adm = admin(t.base, app);
    for (const [id, nickname] of [['u1', 'Test AB'], ['u2', 'abby'], ['u3', 'Carl'], ['u4', 'x.y*z']]) await adm.post('/admin/clients', { _id: id, nickname });
  });
  afterAll(async () => {
    await t.close();
    await sandbox.close();
  });

  it('GET /admin/clients?q= filters (api-doc admin/Admin-Client-List-&-Search.md: q={"nickname": {"$regex": ".*AB.*"}})', async () => {
    const adm = admin(t.base, app);
    const ids = async (q: unknown, extra = '') => (await adm.get(`/admin/clients?q=${encodeURIComponent(JSON.stringify(q))}${extra}`)).body.result;
    expect((await ids({ nickname: { $regex: '.*AB.*' } })).data.map((c: { _id: string }) => c._id)).toEqual(['u1']);
    expect((await ids({ nickname: { $regex: 'ab', $options: 'i' } })).data.map((c: { _id: string }) => c._id)).toEqual(['u1', 'u2']);
    expect((await ids({ nickname: { $regex: '^ab' } })).data.map((c: { _id: string }) => c._id)).toEqual(['u2']);
    expect((await ids({ nickname: { $regex: 'x\\.y\\*z' } })).data.map((c: { _id: string }) => c._id)).toEqual(['u4']);
    expect((await ids({ _id: { $in: ['u3', 'u1', 'nobody'] } })).data.map((c: { _id: string }) => c._id)).toEqual(['u1', 'u3']);
    expect(await ids({ _id: 'u3' })).toMatchObject({ totalCount: 1, data: [{ _id: 'u3', nickname: 'Carl' }] });
    const paged = await ids({ nickname: { $regex: 'a', $options: 'i' } }, '&limit=1&skip=1');
    expect(paged.totalCount).toBe(3);
    expect(paged.data.map((c: { _id: string }) => c._id)).toEqual(['u2']);
    expect((await adm.get('/admin/clients')).body.result.totalCount).toBe(4);
    for (const q of ['{not json', JSON.stringify({ nickname: { $regex: '(a+)+$' } }), JSON.stringify({ email: 'x' }), JSON.stringify({ nickname: { $where: '1' } })]) {
      const r = await adm.get(`/admin/clients?q=${encodeURIComponent(q)}`);
      expect({ status: r.status, code: code(r) }, q).toEqual({ status: 400, code: 'INVALID_QUERY' });
    }
  });

  it('POST /auths/sign/v2: with the API key; with the client key alone only when the sandbox is on', async () => {
    // Flutter: IMAuthRequest.fetchToken → POST /auths/sign/v2 {id} with the client key (lib/services/network/api/requests/im_auth_request.dart)
    const byKey = await admin(t.base, app).post('/auths/sign/v2', { id: 'signed' });
    expect(byKey.body.result).toMatchObject({ authType: 'Standalone JWT', token: expect.any(String), id: 'signed', exp: expect.any(Number), expirationDate: expect.any(String) });
    expect((await user(t.base, app, byKey.body.result.token).get('/me')).body.result).toMatchObject({ id: 'signed' });
    const refused = await api(t.base, { 'IM-CLIENT-KEY': app.clientKey }).post('/auths/sign/v2', { id: 'anyone' });
    expect({ status: refused.status, code: code(refused) }).toEqual({ status: 403, code: 'SANDBOX_DISABLED' });
    const open = await api(sandbox.base, { 'IM-CLIENT-KEY': sandboxApp.clientKey }).post('/auths/sign/v2', { id: 'flutter-user' });
    expect(open.status).toBe(200);
    expect((await user(sandbox.base, sandboxApp, open.body.result.token).get('/me')).body.result).toMatchObject({ id: 'flutter-user' });
    expect(code(await api(sandbox.base, { 'IM-CLIENT-KEY': 'not-a-key' }).post('/auths/sign/v2', { id: 'x' }))).toBe('INVALID_CLIENT_KEY');
    expect(code(await api(sandbox.base, {}).post('/auths/sign/v2', { id: 'x' }))).toBe('MISSING_CLIENT_KEY');
    expect(code(await api(sandbox.base, { 'IM-CLIENT-KEY': sandboxApp.clientKey }).post('/auths/sign/v2', {}))).toBe('INVALID_INPUT');
  });

  async function socketOf(server: TestServer, who: string, token: string, target = app): Promise<Socket> {
    const s = connect(server.base);
    await once(s, 'connect');
    const ack = (await s.timeout(5000).emitWithAck('auth2', token, { 'IM-CLIENT-KEY': target.clientKey })) as { RC: number };
    expect(ack.RC, who).toBe(0);
    return s;
  }

  it('POST /messages/batch: API key to rooms and receivers with $pattern$; a user (Vue mass texting) only into their rooms', async () => {
    const adm = admin(t.base, app);
    const tokens: Record<string, string> = {};
    for (const id of ['boss', 'r1', 'r2', 'r3']) tokens[id] = (await adm.post('/admin/clients', { _id: id, nickname: id.toUpperCase(), issueAccessToken: true })).body.result.token;
    await adm.post('/rooms', { _id: 'news', members: ['r1', 'r2'] });
    await adm.post('/rooms', { _id: 'elsewhere', members: ['r3'] });
    const r1 = await socketOf(t, 'r1', tokens.r1!);
    const r3 = await socketOf(t, 'r3', tokens.r3!);
    try {
      const inNews = once<Record<string, any>>(r1, 'chat message');
      // api-doc message/message-basic/batch-send-messages.md
      const res = await adm.post('/messages/batch', {
        message: 'Hi $name$, order $order$ shipped', messageType: 'text', sender: 'boss', push: false,
        extra: { order: '$order$' },
        paras: [{ room: 'news', $name$: 'team', $order$: 'A-1' }, { receiver: 'r3', $name$: 'R3', $order$: 'B-2' }],
      });
      expect(res.body.result).toMatchObject({ batchID: expect.any(String), count: 2 });
      expect((await inNews)[0]).toMatchObject({ room: 'news', message: 'Hi team, order A-1 shipped', extra: { order: 'A-1' }, sender: { id: 'boss' }, batchID: res.body.result.batchID });
      // GET /messages/batch?batchID= lists what the batch sent (once the queue has run).
      await until(async () => (await adm.get(`/messages/batch?batchID=${res.body.result.batchID}`)).body.result.count === 2);
      const listed = (await adm.get(`/messages/batch?batchID=${res.body.result.batchID}`)).body.result.data.map((m: { message: string }) => m.message);
      expect(listed.sort()).toEqual(['Hi R3, order B-2 shipped', 'Hi team, order A-1 shipped']);
      // The receiver's direct room with the sender is created; r3 hears it live.
      await until(async () => (await user(t.base, app, tokens.r3!).get('/rooms')).body.result.data.some((r: { roomType: string }) => r.roomType === 'direct'));
      const direct = (await user(t.base, app, tokens.r3!).get('/rooms')).body.result.data.find((r: { roomType: string }) => r.roomType === 'direct');
      await until(async () => (await user(t.base, app, tokens.r3!).get(`/rooms/${direct._id}/messages/v3`)).body.result.data.length === 1);
      expect((await user(t.base, app, tokens.r3!).get(`/rooms/${direct._id}/messages/v3`)).body.result.data[0]).toMatchObject({ message: 'Hi R3, order B-2 shipped', sender: { id: 'boss' } });
      // Vue SDK batchSendMessage: {message, messageType: "text", paras: [{room}]} with client credentials.
      const seenByR3 = collect(r3, 'chat message');
      const arrived = once<Record<string, any>>(r1, 'chat message');
      const vue = await user(t.base, app, tokens.r2!).post('/messages/batch', { message: 'hello all', messageType: 'text', paras: [{ room: 'news' }, { room: 'elsewhere' }] });
      expect(vue.body.result.count).toBe(2);
      expect((await arrived)[0]).toMatchObject({ room: 'news', message: 'hello all', sender: { id: 'r2' } });
      const mark = (await user(t.base, app, tokens.r3!).post('/rooms/elsewhere/message', { message: 'after' })).body.result._id;
      await until(() => seenByR3.some((m: any) => m._id === mark));
      expect(seenByR3.filter((m: any) => m.message === 'hello all')).toEqual([]);
      // A user may not name a sender or a receiver; bad bodies name the field.
      expect(code(await user(t.base, app, tokens.r2!).post('/messages/batch', { message: 'x', messageType: 'text', sender: 'boss', paras: [{ room: 'news' }] }))).toBe('API_KEY_REQUIRED');
      expect(code(await user(t.base, app, tokens.r2!).post('/messages/batch', { message: 'x', messageType: 'text', paras: [{ receiver: 'r1' }] }))).toBe('API_KEY_REQUIRED');
      expect((await adm.post('/messages/batch', { messageType: 'text', paras: [{ room: 'news' }] })).body.RM).toMatch(/^message:/);
      expect((await adm.post('/messages/batch', { message: 'x', messageType: 'text', paras: [{}] })).body.RM).toMatch(/^paras\.0/);
      expect((await adm.post('/messages/batch', { message: 'x', messageType: 'text', paras: [{ receiver: 'r1' }] })).body.RM).toMatch(/^sender:/);
    } finally {
      r1.disconnect();
      r3.disconnect();
    }
  });

  it('GET /admin/messages: across rooms, newest first, by time window; API key only (api-doc admin/Admin-List-Messages.md)', async () => {
    const adm = admin(t.base, app);
    await adm.post('/rooms', { _id: 'm-a', members: ['u1'] });
    await adm.post('/rooms', { _id: 'm-b', members: ['u2'] });
    const start = Date.now();
    await until(() => Date.now() > start);
    await adm.post('/messages', { room: 'm-a', sender: 'u1', message: 'first', messageType: 'text' });
    await adm.post('/messages', { room: 'm-b', sender: 'u2', message: 'second', messageType: 'text' });
    const res = await adm.get(`/admin/messages?startDate=${encodeURIComponent(new Date(start).toISOString())}&limit=10`);
    expect(res.body.result.data.map((m: { message: string }) => m.message).slice(0, 2)).toEqual(['second', 'first']);
    expect(res.body.result.data[0]).toMatchObject({ room: 'm-b', sender: { id: 'u2' } });
    expect((await adm.get(`/admin/messages?endDate=${start}&limit=1000`)).body.result.data.every((m: { createdAtMS: number }) => m.createdAtMS <= start)).toBe(true);
    const u1 = (await adm.post('/admin/clients', { _id: 'u1', issueAccessToken: true })).body.result.token;
    expect(code(await user(t.base, app, u1).get('/admin/messages'))).toBe('API_KEY_REQUIRED');
  });

  it('POST /admin/clients/list upserts many (api-doc user/user-management/batch-create-users.md)', async () => {
    const adm = admin(t.base, app);
    const res = await adm.post('/admin/clients/list', { data: [{ _id: 'l1', nickname: 'One' }, { _id: 'l2', nickname: 'Two', avatarUrl: 'https://x/a.png' }] });
    expect(res.body.result).toEqual({ count: 2 });
    expect((await adm.get('/admin/clients/l2')).body.result).toMatchObject({ nickname: 'Two', avatarUrl: 'https://x/a.png' });
    expect(code(await adm.post('/admin/clients/list', { data: [{ nickname: 'no id' }] }))).toBe('INVALID_INPUT');
    expect(code(await adm.post('/admin/clients/list', { data: [{ _id: 'l3', issueAccessToken: true }] }))).toBe('INVALID_INPUT');
  });

  it('/config: users read, the API key writes; censorship keywords are masked on send, REST and socket', async () => {
    const adm = admin(t.base, app);
    const tok = (await adm.post('/admin/clients', { _id: 'cfg', issueAccessToken: true })).body.result.token;
    const peerTok = (await adm.post('/admin/clients', { _id: 'cfg-peer', issueAccessToken: true })).body.result.token;
    await adm.post('/rooms', { _id: 'cfg-room', members: ['cfg', 'cfg-peer'] });
    // api-doc config/update-config.md
    const set = await adm.post('/config', { announcement: { text: 'Maintenance at 02:00', pin: true }, censorship: { keywords: ['spam', '廣告'] } });
    expect(set.body.result).toEqual({ announcement: { text: 'Maintenance at 02:00', pin: true }, censorship: { keywords: ['spam', '廣告'] } });
    const me = user(t.base, app, tok);
    expect((await me.get('/config')).body.result).toMatchObject({ announcement: { text: 'Maintenance at 02:00', pin: true } });
    expect(code(await me.post('/config', { x: 1 }))).toBe('API_KEY_REQUIRED');
    expect(code(await me.del('/config/announcement'))).toBe('API_KEY_REQUIRED');
    const sent = await me.post('/rooms/cfg-room/message', { message: 'no SPAM here, 廣告!' });
    expect(sent.body.result.message).toBe('no **** here, **!');
    const peer = await socketOf(t, 'cfg-peer', peerTok);
    try {
      const arrived = once<Record<string, unknown>>(peer, 'chat message');
      const ack = (await (await socketOf(t, 'cfg', tok)).timeout(5000).emitWithAck('chat message', { room: 'cfg-room', message: 'spam spam' })) as { result: { message: string } };
      expect(ack.result.message).toBe('**** ****');
      expect((await arrived)[0]).toMatchObject({ message: '**** ****' });
    } finally {
      peer.disconnect();
    }
    expect((await adm.del('/config/censorship')).body.result).toEqual({});
    await until(async () => (await me.post('/rooms/cfg-room/message', { message: 'spam' })).body.result.message === 'spam');
    expect((await me.get('/config')).body.result).toEqual({ announcement: { text: 'Maintenance at 02:00', pin: true } });
    expect(code(await adm.post('/config', { censorship: { keywords: 'spam' } }))).toBe('INVALID_INPUT');
    expect(code(await adm.post('/config', ['not', 'an', 'object']))).toBe('INVALID_INPUT');
  });

  it('/admin/groups: a user group in a room brings its users, follows its membership, and leaves with them (api-doc user/user-groups/*.md)', async () => {
    const adm = admin(t.base, app);
    const tokens: Record<string, string> = {};
    for (const id of ['g1', 'g2', 'g3', 'gowner']) tokens[id] = (await adm.post('/admin/clients', { _id: id, nickname: id.toUpperCase(), issueAccessToken: true })).body.result.token;
    const as = (who: string) => user(t.base, app, tokens[who]!);
    // api-doc create-group.md: {_id, nickname, avatarUrl, members}
    const created = await adm.post('/admin/groups', { _id: 'support', nickname: 'Support Team', avatarUrl: 'https://x/t.png', members: ['g1', 'g2'] });
    expect(created.body.result).toMatchObject({ _id: 'support', id: 'support', nickname: 'Support Team', members: ['g1', 'g2'], clientType: 'group' });
    const g2 = await socketOf(t, 'g2', tokens.g2!);
    try {
      await adm.post('/rooms', { _id: 'helpdesk', members: ['gowner', 'support'], owner: 'gowner' });
      const members = async () => (await adm.get('/rooms/helpdesk')).body.result.members.map((m: { id: string }) => m.id).sort();
      expect(await members()).toEqual(['g1', 'g2', 'gowner', 'support']);
      // A member through the group reads, sends and receives like anyone.
      await until(async () => (await as('g2').get('/rooms')).body.result.data.some((r: { _id: string }) => r._id === 'helpdesk'));
      const heard = once<Record<string, unknown>>(g2, 'chat message');
      expect((await as('g1').post('/rooms/helpdesk/message', { message: 'on it' })).status).toBe(200);
      expect((await heard)[0]).toMatchObject({ message: 'on it', sender: { id: 'g1' } });
      // Changing the group changes the room: g3 joins, g1 leaves.
      await adm.post('/admin/groups', { _id: 'support', nickname: 'Support Team', members: ['g2', 'g3'] });
      expect(await members()).toEqual(['g2', 'g3', 'gowner', 'support']);
      expect(code(await as('g1').get('/rooms/helpdesk/messages/v3'))).toBe('NOT_ROOM_MEMBER');
      expect((await as('g3').get('/rooms/helpdesk/messages/v3')).body.result.data[0]).toMatchObject({ message: 'on it' });
      // g2 is added in person too, so stays when the group leaves the room; g3 goes with it.
      await adm.post('/rooms/helpdesk/members', { invitees: ['g2'] });
      await adm.post('/rooms/helpdesk/delete/members', { members: ['support'] });
      expect(await members()).toEqual(['g2', 'gowner']);
      // Groups are listed; a user id cannot become a group; groups do not nest.
      expect((await adm.get('/admin/groups')).body.result.data.map((g: { _id: string }) => g._id)).toEqual(['support']);
      expect(code(await adm.post('/admin/groups', { _id: 'g1', nickname: 'x' }))).toBe('CLIENT_EXISTS');
      expect(code(await adm.post('/admin/groups', { _id: 'meta', nickname: 'x', members: ['support'] }))).toBe('INVALID_INPUT');
      expect(code(await adm.post('/admin/groups', { nickname: 'x', members: ['ghost'] }))).toBe('CLIENT_NOT_FOUND');
      expect(code(await as('g1').post('/admin/groups', { nickname: 'x' }))).toBe('API_KEY_REQUIRED');
    } finally {
      g2.disconnect();
    }
  });
});
