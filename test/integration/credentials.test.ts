import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { connect, once } from '../helpers/sockets.js';
import { api, admin, getWithHost, OPERATOR_SECRET, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';

describe.each(TRANSPORTS)('credentials over %s', (transport) => {
  const clock = new ManualClock();
  let t: TestServer;
  let app: TestApp;
  let other: TestApp;
  let token: string;
  let otherToken: string;

  beforeAll(async () => {
    t = await startTestServer(transport, {}, { clock });
    app = await t.createApp('main');
    other = await t.createApp('other');
    token = await t.createUser(app, 'alice');
    otherToken = await t.createUser(other, 'alice');
  });
  afterAll(() => t.close());


  describe('client key (the three seed errors)', () => {
    it('works with a valid client key and token', async () => {
      const r = await user(t.base, app, token).get('/me');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ RC: 0, RM: 'OK', result: { _id: 'alice', id: 'alice', clientType: 'user' } });
    });

    it('MISSING_CLIENT_KEY without a client key, with or without a token', async () => {
      for (const headers of [{ 'IM-Authorization': token }, {}]) {
        const r = await api(t.base, headers).get('/me');
        expect(r.status).toBe(401);
        expect(r.body).toEqual({
          RC: 401,
          RM: r.body.error!.message,
          error: { code: 'MISSING_CLIENT_KEY', message: expect.any(String) },
        });
      }
    });

    it('INVALID_CLIENT_KEY for garbage, a bad signature, an unknown app', async () => {
      const forged = await new SignJWT({ appId: app.appId, createAt: Date.now() })
        .setProtectedHeader({ alg: 'HS256' })
        .setJti('x')
        .sign(new TextEncoder().encode('not-the-secret-not-the-secret-32'));
      const unknown = await new SignJWT({ appId: 'no-such-app', createAt: 1 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('whatever-whatever-whatever-12345'));
      const [h, , s] = app.clientKey.split('.');
      const tampered = `${h}.${Buffer.from(JSON.stringify({ appId: other.appId, createAt: 1 })).toString('base64url')}.${s}`;
      for (const key of ['garbage', 'a.b.c', forged, unknown, tampered]) {
        const r = await api(t.base, { 'IM-CLIENT-KEY': key, 'IM-Authorization': token }).get('/me');
        expect(r.status, key).toBe(401);
        expect(code(r), key).toBe('INVALID_CLIENT_KEY');
      }
    });

    it("CLIENT_KEY_MISMATCH when the token belongs to another application", async () => {
      const r = await user(t.base, app, otherToken).get('/me');
      expect(r.status).toBe(403);
      expect(code(r)).toBe('CLIENT_KEY_MISMATCH');
    });

    it('accepts the header names in any case, and the deprecated Authorization', async () => {
      const r1 = await api(t.base, { 'Im-Client-Key': app.clientKey, 'im-authorization': token }).get('/me');
      expect(r1.status).toBe(200);
      const r2 = await api(t.base, { 'IM-CLIENT-KEY': app.clientKey, Authorization: token }).get('/me');
      expect(r2.status).toBe(200);
      const r3 = await api(t.base, { 'im-api-key': app.apiKey }).get('/admin/clients');
      expect(r3.status).toBe(200);
    });


    it('reads the same names and the same Bearer handling on every path (REST, upgrade, CONNECT auth, auth2)', async () => {
      const bearer = `Bearer ${token}`;
      expect((await api(t.base, { 'IM-CLIENT-KEY': app.clientKey, Authorization: bearer }).get('/me')).status).toBe(200);
      expect((await api(t.base, { clientKey: app.clientKey, token: bearer }).get('/me')).status).toBe(200);
      const viaAuth = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': bearer } });
      const viaQuery = connect(t.base, { query: { 'client-key': app.clientKey, token: bearer } });
      const viaAuth2 = connect(t.base);
      try {
        await Promise.all([once(viaAuth, 'connect'), once(viaQuery, 'connect'), once(viaAuth2, 'connect')]);
        expect(await viaAuth.timeout(2000).emitWithAck('auth2', '', {})).toMatchObject({ RC: 0, result: { client: 'alice' } });
        expect(await viaQuery.timeout(2000).emitWithAck('auth2', '', {})).toMatchObject({ RC: 0, result: { client: 'alice' } });
        expect(await viaAuth2.timeout(2000).emitWithAck('auth2', bearer, { clientKey: app.clientKey })).toMatchObject({ RC: 0, result: { client: 'alice' } });
      } finally {
        for (const s of [viaAuth, viaQuery, viaAuth2]) s.disconnect();
      }
    });

    it('revoke → every client-key request fails; generate refused while active; new key works', async () => {
      const own = await t.createApp('rotating');
      const tok = await t.createUser(own, 'bob');
      const a = admin(t.base, own);
      expect((await a.get('/admin/client-key')).body.result.clientKey).toBe(own.clientKey);
      const again = await a.post('/admin/client-key');
      expect(again.status).toBe(409);
      expect(code(again)).toBe('CLIENT_KEY_ALREADY_ACTIVE');
      expect((await a.del('/admin/client-key')).status).toBe(200);
      const refused = await user(t.base, own, tok).get('/me');
      expect(refused.status).toBe(401);
      expect(code(refused)).toBe('INVALID_CLIENT_KEY');
      expect((await a.get('/admin/client-key')).body.result.clientKey).toBeNull();
      expect(code(await a.del('/admin/client-key'))).toBe('CLIENT_KEY_NOT_FOUND');
      const fresh = await a.post('/admin/client-key');
      expect(fresh.status).toBe(200);
      const newKey = fresh.body.result.clientKey as string;
      expect(newKey).not.toBe(own.clientKey);
      expect((await user(t.base, { ...own, clientKey: newKey }, tok).get('/me')).status).toBe(200);
      expect(code(await user(t.base, own, tok).get('/me'))).toBe('INVALID_CLIENT_KEY');
    });
  });

  describe('domains', () => {
    let scoped: TestApp;
    let scopedToken: string;
    beforeAll(async () => {
      scoped = await t.createApp('scoped', ['chat.example.com']);
      scopedToken = await t.createUser(scoped, 'carol');
    });

    it('accepts the key on one of its domains and refuses it elsewhere', async () => {
      const creds = { 'IM-CLIENT-KEY': scoped.clientKey, 'IM-Authorization': scopedToken };
      expect((await getWithHost(t.base, '/me', { ...creds, host: 'chat.example.com:443' })).status).toBe(200);
      const r = await getWithHost(t.base, '/me', { ...creds, host: 'evil.example.org' });
      expect(r.status).toBe(403);
      expect(code(r)).toBe('CLIENT_KEY_MISMATCH');
    });

    it("refuses another application's key on this application's domain", async () => {
      const r = await getWithHost(t.base, '/me', { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token, host: 'chat.example.com' });
      expect(code(r)).toBe('CLIENT_KEY_MISMATCH');
    });

    it('ignores X-Forwarded-Host unless trust-proxy is on', async () => {
      const creds = { 'IM-CLIENT-KEY': scoped.clientKey, 'IM-Authorization': scopedToken };
      const r = await getWithHost(t.base, '/me', { ...creds, host: 'evil.example.org', 'x-forwarded-host': 'chat.example.com' });
      expect(code(r)).toBe('CLIENT_KEY_MISMATCH');
      const proxied = await startTestServer(transport, { trustProxy: true });
      try {
        const s = await proxied.createApp('scoped', ['chat.example.com']);
        const tok = await proxied.createUser(s, 'carol');
        const ok = await getWithHost(proxied.base, '/me', { 'IM-CLIENT-KEY': s.clientKey, 'IM-Authorization': tok, host: 'evil.example.org', 'x-forwarded-host': 'chat.example.com' });
        expect(ok.status).toBe(200);
      } finally {
        await proxied.close();
      }
    });
  });

  describe('API key', () => {
    it('INVALID_API_KEY for a wrong key, even with a valid client key beside it', async () => {
      const r = await api(t.base, { 'IM-API-KEY': 'wrong', 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token }).get('/admin/clients');
      expect(r.status).toBe(401);
      expect(code(r)).toBe('INVALID_API_KEY');
    });

    it("acts only on its own application's data", async () => {
      await admin(t.base, other).post('/admin/clients', { _id: 'only-in-other' });
      expect((await admin(t.base, app).get('/admin/clients/only-in-other')).status).toBe(404);
      expect((await admin(t.base, other).get('/admin/clients/only-in-other')).status).toBe(200);
    });

    it('the operations the seed reserves for the API key are refused to client credentials', async () => {
      const u = user(t.base, app, token);
      const refusals = [
        await u.post('/admin/clients', { _id: 'mallory' }),
        await u.get('/admin/clients'),
        await u.del('/admin/clients/alice'),
        await u.put('/admin/clients/alice/token', { token: 'abcdefgh12', expirationDate: Date.now() + 60_000 }),
        await u.del('/admin/clients/alice/token'),
        await u.get('/admin/client-key'),
        await u.del('/admin/client-key'),
        await u.post('/messages', { room: 'x', sender: 'alice', message: 'hi' }),
      ];
      for (const r of refusals) {
        expect(r.status).toBe(403);
        expect(code(r)).toBe('API_KEY_REQUIRED');
      }
      expect((await admin(t.base, app).get('/admin/clients/mallory')).status).toBe(404);
      expect((await user(t.base, app, token).get('/me')).status).toBe(200);
    });
  });

  describe('user tokens', () => {
    it('INVALID_TOKEN for unknown, forged and expired tokens; MISSING_TOKEN without one', async () => {
      const c = (tok?: string) => api(t.base, { 'IM-CLIENT-KEY': app.clientKey, ...(tok ? { 'IM-Authorization': tok } : {}) });
      expect(code(await c('not-a-token').get('/me'))).toBe('INVALID_TOKEN');
      const [h, p] = token.split('.');
      expect(code(await c(`${h}.${p}.AAAA`).get('/me'))).toBe('INVALID_TOKEN');
      const none = await c().get('/me');
      expect(none.status).toBe(401);
      expect(code(none)).toBe('MISSING_TOKEN');
      const a = admin(t.base, app);
      await a.post('/admin/clients', { _id: 'shortlived', token: 'short-lived-token', expirationDate: clock.now() + 300 });
      expect((await c('short-lived-token').get('/me')).status).toBe(200);
      clock.advance(400); // the server's clock: no sleeping for the expiry
      const expired = await c('short-lived-token').get('/me');
      expect(expired.status).toBe(401);
      expect(code(expired)).toBe('INVALID_TOKEN');
    });

    it('issued tokens are JWTs with the id claim, 7 days by default', async () => {
      const r = await admin(t.base, app).post('/admin/clients', { _id: 'dave', issueAccessToken: true });
      const payload = JSON.parse(Buffer.from(r.body.result.token.split('.')[1], 'base64url').toString());
      expect(payload.id).toBe('dave');
      const days = (payload.exp * 1000 - clock.now()) / 86_400_000;
      expect(days).toBeGreaterThan(6.9);
      expect(days).toBeLessThanOrEqual(7);
      expect(r.body.result.expirationDateMS).toBe(payload.exp * 1000);
    });

    it('a newly bound token replaces the older ones; revoke one or all; unknown token to revoke is 404', async () => {
      const a = admin(t.base, app);
      await a.post('/admin/clients', { _id: 'erin', token: 'erin-token-one', expirationDate: new Date(Date.now() + 3_600_000).toISOString() });
      const c = (tok: string) => api(t.base, { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tok });
      expect((await c('erin-token-one').get('/me')).status).toBe(200);
      // Body as api-doc user/user-token/update-token.md sends it.
      const put = await a.put('/admin/clients/erin/token', { token: 'erin-token-two', expirationDate: new Date(Date.now() + 3_600_000).toISOString() });
      expect(put.status).toBe(200);
      expect(put.body.result).toMatchObject({ _id: 'erin', client: 'erin', token: 'erin-token-two', issueAccessToken: false, expirationDate: expect.any(String), expirationDateMS: expect.any(Number) });
      // "the old token will be invalidated" (update-token.md)
      expect(code(await c('erin-token-one').get('/me'))).toBe('INVALID_TOKEN');
      expect((await c('erin-token-two').get('/me')).status).toBe(200);
      // Binding the same token again keeps it working.
      await a.put('/admin/clients/erin/token', { token: 'erin-token-two', expirationDate: Date.now() + 3_600_000 });
      expect((await c('erin-token-two').get('/me')).status).toBe(200);
      expect(code(await a.del('/admin/clients/erin/token', { token: 'erin-token-one' }))).toBe('TOKEN_NOT_FOUND');
      expect(code(await a.del('/admin/clients/erin/token', { token: 'never-issued' }))).toBe('TOKEN_NOT_FOUND');
      const one = await a.del('/admin/clients/erin/token', { token: 'erin-token-two' });
      expect(one.body.result).toMatchObject({ success: true, revokedTokens: 1 });
      expect(code(await c('erin-token-two').get('/me'))).toBe('INVALID_TOKEN');
      // An issued token replaces an assigned one too.
      await a.post('/admin/clients', { _id: 'erin', token: 'erin-token-three', expirationDate: Date.now() + 3_600_000 });
      const issued = await a.post('/admin/clients', { _id: 'erin', issueAccessToken: true });
      expect(code(await c('erin-token-three').get('/me'))).toBe('INVALID_TOKEN');
      expect((await c(issued.body.result.token).get('/me')).status).toBe(200);
      const all = await a.del('/admin/clients/erin/token');
      expect(all.body.result).toMatchObject({ success: true, message: 'All tokens revoked successfully', revokedTokens: 1 });
      expect(code(await c(issued.body.result.token).get('/me'))).toBe('INVALID_TOKEN');
    });

    it('a token assigned to one user cannot be assigned to another', async () => {
      const a = admin(t.base, app);
      await a.post('/admin/clients', { _id: 'f1', token: 'shared-token-x', expirationDate: Date.now() + 60_000 });
      const r = await a.post('/admin/clients', { _id: 'f2', token: 'shared-token-x', expirationDate: Date.now() + 60_000 });
      expect({ status: r.status, code: code(r) }).toEqual({ status: 409, code: 'TOKEN_CONFLICT' });
      const put = await a.put('/admin/clients/f2/token', { token: 'shared-token-x', expirationDate: Date.now() + 60_000 });
      expect({ status: put.status, code: code(put) }).toEqual({ status: 409, code: 'TOKEN_CONFLICT' });
    });
  });

  describe('operator endpoints', () => {
    it('refuse a missing or wrong operator secret', async () => {
      expect(code(await api(t.base, {}).get('/operator/apps'))).toBe('INVALID_OPERATOR_SECRET');
      expect(code(await api(t.base, { authorization: 'Bearer nope' }).get('/operator/apps'))).toBe('INVALID_OPERATOR_SECRET');
      expect(code(await api(t.base, { 'IM-API-KEY': app.apiKey }).get('/operator/apps'))).toBe('INVALID_OPERATOR_SECRET');
    });

    it('create, list and delete applications', async () => {
      const op = api(t.base, { authorization: `Bearer ${OPERATOR_SECRET}` });
      const created = await op.post('/operator/apps', { name: 'ephemeral' });
      expect(created.body.result).toMatchObject({ id: expect.any(String), apiKey: expect.any(String), clientKey: expect.any(String) });
      const listed = await op.get('/operator/apps');
      const row = listed.body.result.data.find((a: { id: string }) => a.id === created.body.result.id);
      expect(row).toMatchObject({ name: 'ephemeral', clientKey: created.body.result.clientKey });
      expect(JSON.stringify(listed.body)).not.toContain(created.body.result.apiKey);
      expect((await op.del(`/operator/apps/${created.body.result.id}`)).status).toBe(200);
      expect(code(await api(t.base, { 'IM-API-KEY': created.body.result.apiKey }).get('/admin/clients'))).toBe('INVALID_API_KEY');
      expect((await op.del(`/operator/apps/${created.body.result.id}`)).status).toBe(404);
    });

    it('are disabled when no operator secret is set', async () => {
      const closed = await startTestServer(transport, { operatorSecret: '' });
      try {
        const r = await api(closed.base, { authorization: 'Bearer ' }).get('/operator/apps');
        expect(r.status).toBe(403);
        expect(code(r)).toBe('OPERATOR_DISABLED');
      } finally {
        await closed.close();
      }
    });
  });

  describe('CORS', () => {
    it('answers the preflight with the IMKIT headers and allows any origin by default', async () => {
      const res = await fetch(`${t.base}/rooms`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'im-authorization, im-client-key, x-timezone' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase();
      for (const h of ['im-authorization', 'im-client-key', 'im-api-key', 'im-device-id', 'x-timezone', 'accept-language', 'content-type']) {
        expect(allowed).toContain(h);
      }
      expect(res.headers.get('access-control-allow-methods')).toContain('DELETE');
      const get = await fetch(`${t.base}/me`, { headers: { origin: 'https://app.example' } });
      expect(get.headers.get('access-control-allow-origin')).toBe('*');
    });

    it('echoes only configured origins when a list is set', async () => {
      const strict = await startTestServer(transport, { corsOrigins: ['https://good.example'] });
      try {
        const good = await fetch(`${strict.base}/healthz`, { headers: { origin: 'https://good.example' } });
        expect(good.headers.get('access-control-allow-origin')).toBe('https://good.example');
        const bad = await fetch(`${strict.base}/healthz`, { headers: { origin: 'https://bad.example' } });
        expect(bad.headers.get('access-control-allow-origin')).toBeNull();
      } finally {
        await strict.close();
      }
    });
  });
});

// uWebSockets.js drops requests whose header names contain '_' before our code sees them (as
// nginx does by default), so the deprecated underscore aliases work on the node transport
// only; the README says so.
describe('deprecated underscore headers on the node transport', () => {
  it('accepts CLIENT_KEY and API_KEY', async () => {
    const t = await startTestServer('node');
    try {
      const app = await t.createApp('legacy');
      const token = await t.createUser(app, 'alice');
      const r1 = await api(t.base, { CLIENT_KEY: app.clientKey, 'IM-Authorization': token }).get('/me');
      expect(r1.status).toBe(200);
      const r2 = await api(t.base, { API_KEY: app.apiKey }).get('/admin/clients');
      expect(r2.status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
