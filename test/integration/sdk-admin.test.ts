import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';

const code = (r: { body: { error?: { code: string } } }) => r.body.error?.code;

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
});
