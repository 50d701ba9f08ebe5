import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';

/** The API-key routes behind the dashboard's users view: search and token records. */
describe.each(TRANSPORTS)('users view routes over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer(transport);
    app = await t.createApp('people');
    // POST /admin/clients as IMKIT's api-doc "create a user" shows it (_id, nickname, issueAccessToken).
    for (const [id, nickname] of [['alice', 'Alice Liddell'], ['bob', 'Bobby'], ['malice', 'M']] as const) {
      tokens[id] = await t.createUser(app, id, nickname);
    }
  });
  afterAll(() => t.close());

  it('searches users by id or nickname, any case, with paging', async () => {
    const adm = admin(t.base, app);
    const found = await adm.get('/admin/clients?search=ALI');
    expect(found.status).toBe(200);
    expect(found.body.result.totalCount).toBe(2);
    expect(found.body.result.data.map((u: { _id: string }) => u._id).sort()).toEqual(['alice', 'malice']);
    expect((await adm.get('/admin/clients?search=liddell')).body.result.data.map((u: { _id: string }) => u._id)).toEqual(['alice']);
    const page = await adm.get('/admin/clients?search=ali&limit=1&skip=1');
    expect([page.body.result.totalCount, page.body.result.data.length]).toEqual([2, 1]);
    expect((await adm.get('/admin/clients?search=nobody')).body.result).toEqual({ totalCount: 0, data: [] });
    expect((await adm.get('/admin/clients')).body.result.totalCount).toBe(3);
  });

  it("lists a user's token records (never the tokens) and follows revocation", async () => {
    const adm = admin(t.base, app);
    await adm.put('/admin/clients/bob/token', { token: 'bob-assigned-token', expirationDate: Date.now() + 3_600_000 });
    const listed = await adm.get('/admin/clients/bob/tokens');
    expect(listed.status).toBe(200);
    // Binding a token replaces the user's older ones (IMKIT), so only the assigned one is listed.
    expect(listed.body.result.totalCount).toBe(1);
    expect(listed.body.result.data.map((r: { issuedByServer: boolean }) => r.issuedByServer)).toEqual([false]);
    expect(JSON.stringify(listed.body)).not.toContain(tokens.bob);
    expect(JSON.stringify(listed.body)).not.toContain('bob-assigned-token');
    expect(listed.body.result.data[0]).toEqual({
      issuedByServer: false, createdAt: expect.any(String), createdAtMS: expect.any(Number),
      expirationDate: expect.any(String), expirationDateMS: expect.any(Number), expired: false,
    });
    expect((await adm.del('/admin/clients/bob/token', {})).body.result.revokedTokens).toBe(1);
    expect((await adm.get('/admin/clients/bob/tokens')).body.result).toEqual({ totalCount: 0, data: [] });
    expect((await adm.get('/admin/clients/ghost/tokens')).body.error.code).toBe('CLIENT_NOT_FOUND');
  });

  it('is for the API key only', async () => {
    const asAlice = user(t.base, app, tokens.alice!);
    const tokensRes = await asAlice.get('/admin/clients/alice/tokens');
    expect([tokensRes.status, tokensRes.body.error.code]).toEqual([403, 'API_KEY_REQUIRED']);
    expect((await asAlice.get('/admin/clients?search=a')).body.error.code).toBe('API_KEY_REQUIRED');
  });
});
