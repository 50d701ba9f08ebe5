import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode } from '../helpers/cluster.js';
import { requireBinary } from '../helpers/redis.js';
import { OPERATOR_SECRET, startTestServer, type TestApp, type TestServer, TRANSPORTS } from '../helpers/server.js';
import { connect, once, until } from '../helpers/sockets.js';

/** A fresh self-signed certificate for 127.0.0.1 (openssl, as an operator would make one). */
function selfSigned(dir: string, name: string): { cert: string; key: string; pem: string } {
  const openssl = requireBinary('openssl', 'apt-get install openssl');
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(openssl, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}

/** GET over HTTPS trusting `ca`; also returns the certificate the server presented. */
function get(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers, agent: false }, (res) => {
      const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text), fingerprint }));
    });
    req.on('error', reject);
  });
}

/** POST JSON over HTTPS trusting `ca`; the envelope's result. */
function send(url: string, ca: string, headers: Record<string, string>, body: unknown): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, agent: false, headers: { ...headers, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text).result) : reject(new Error(`${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

describe.each(TRANSPORTS)('TLS over %s', (transport) => {
  let dir: string;
  let first: ReturnType<typeof selfSigned>;
  let t: TestServer;
  let app: TestApp;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-'));
    first = selfSigned(dir, 'first');
    t = await startTestServer(transport, { tlsCertFile: first.cert, tlsKeyFile: first.key });
    expect(t.base.startsWith('https://')).toBe(true);
    // Operator and admin calls over HTTPS, trusting the test's own certificate.
    const created = await send(`${t.base}/operator/apps`, first.pem, { authorization: `Bearer ${OPERATOR_SECRET}` }, { name: 'tls' });
    app = { appId: created.id, apiKey: created.apiKey, clientKey: created.clientKey };
    // The body IMKIT's API documents for POST /admin/clients (imkit/api-doc).
    token = (await send(`${t.base}/admin/clients`, first.pem, { 'im-api-key': app.apiKey }, { _id: 'alice', nickname: 'Alice', issueAccessToken: true })).token;
    await send(`${t.base}/rooms`, first.pem, { 'im-api-key': app.apiKey }, { _id: 'secure', name: 'Secure', members: ['alice'] });
  });
  afterAll(() => t?.close());

  it('serves HTTPS REST with the configured certificate', async () => {
    const res = await get(`${t.base}/readyz`, first.pem);
    expect(res.status).toBe(200);
    expect(res.fingerprint).toBe(fingerprintOf(first.pem));
    const me = await get(`${t.base}/me`, first.pem, { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token });
    expect(me.status).toBe(200);
    expect(me.body.result._id).toBe('alice');
  });

  it('the stock socket.io-client connects over wss://, sends and receives; an untrusted certificate is refused', async () => {
    const wss = t.base.replace('https://', 'wss://');
    const socket = connect(wss, { ca: first.pem, auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token } });
    try {
      await once(socket, 'connect', 5000);
      const heard = once<{ message: string }>(socket, 'chat message', 5000);
      const ack = await socket.timeout(3000).emitWithAck('chat message', { room: 'secure', message: 'over wss' });
      expect(ack).toMatchObject({ RC: 0, result: { message: 'over wss' } });
      expect((await heard)[0]!.message).toBe('over wss');
      const untrusted = connect(wss, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token } });
      const [err] = await once<Error>(untrusted, 'connect_error', 5000);
      expect(String(err)).toMatch(/websocket error|self-signed|certificate/i);
      untrusted.close();

      if (transport === 'node') {
        // SIGHUP's reload: new handshakes get the new certificate, the open socket stays.
        const second = selfSigned(dir, 'second');
        const { copyFileSync } = await import('node:fs');
        copyFileSync(second.cert, first.cert);
        copyFileSync(second.key, first.key);
        expect(t.server.reloadTls()).toBe(true);
        const res = await get(`${t.base}/readyz`, second.pem);
        expect(res.fingerprint).toBe(fingerprintOf(second.pem));
        expect(socket.connected).toBe(true);
        expect(await socket.timeout(3000).emitWithAck('conf', { encoding: 'none' })).toMatchObject({ RC: 0 });
      } else {
        // uWS cannot swap a listening SSLApp's certificate: a reload is a drained restart.
        expect(t.server.reloadTls()).toBe(false);
      }
    } finally {
      socket.close();
    }
  });
});

describe('SIGHUP on a running TLS node', () => {
  it('reloads on the node transport and says why not on uws', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-hup-'));
    const pair = selfSigned(dir, 'hup');
    for (const transport of TRANSPORTS) {
      const node = await startNodeTls(transport, pair);
      node.signal('SIGHUP');
      const expected = transport === 'node' ? 'TLS certificate and key reloaded' : 'cannot reload TLS in place';
      await until(() => node.output().includes(expected), 5000);
      await node.kill('SIGKILL');
    }
  });
});

function startNodeTls(transport: string, pair: { cert: string; key: string; pem: string }) {
  return startNode('tls', { ROOMCAST_TRANSPORT: transport, ROOMCAST_TLS_CERT_FILE: pair.cert, ROOMCAST_TLS_KEY_FILE: pair.key }, { tlsCa: pair.pem });
}
