import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jwtVerify, decodeProtectedHeader, importSPKI } from 'jose';
import { requireBinary } from './redis.js';

/** A request a receiver got, with what it found checking it. */
export interface Received {
  headers: http.IncomingHttpHeaders;
  body: any;
  raw: string;
  /** The signature matched the body and timestamp under the secret (webhook and external push). */
  signed: boolean;
}

export type Answer = { status: number; body?: unknown; delayMs?: number };

/**
 * A plain HTTP receiver (room webhook, external push). It checks each request's signature
 * itself, from the spec in the README (HMAC-SHA256 of `<timestamp>.<body>`, hex, `v1=`), not
 * with the server's code, and refuses timestamps more than 5 minutes off (replay).
 */
export class HttpReceiver {
  readonly received: Received[] = [];
  secret = '';
  answer: (r: Received) => Answer = () => ({ status: 200, body: {} });
  private server: http.Server | undefined;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (raw += c));
      req.on('end', () => {
        const r: Received = { headers: req.headers, raw, body: safeJson(raw), signed: verifySignature(this.secret, req.headers, raw) };
        this.received.push(r);
        const a = this.answer(r);
        const send = () => {
          if (res.destroyed) return;
          res.writeHead(a.status, { 'content-type': 'application/json' });
          res.end(a.body === undefined ? '' : JSON.stringify(a.body));
        };
        if (a.delayMs) setTimeout(send, a.delayMs).unref();
        else send();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  /** Down: the port refuses connections until `start(port)` again. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

function verifySignature(secret: string, headers: http.IncomingHttpHeaders, raw: string): boolean {
  const ts = Number(headers['x-roomcast-timestamp']);
  const sig = String(headers['x-roomcast-signature'] ?? '');
  if (!secret || !Number.isInteger(ts) || Math.abs(Date.now() / 1000 - ts) > 300) return false;
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`);
  const got = Buffer.from(sig);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

const safeJson = (raw: string): any => {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
};

/** A self-signed certificate for 127.0.0.1/localhost, made with the openssl binary. */
export function selfSignedCert(): { key: string; cert: string; certFile: string; cleanup(): void } {
  const openssl = requireBinary('openssl', 'apt-get install openssl');
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(openssl, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ApnsRequest {
  path: string;
  headers: http2.IncomingHttpHeaders;
  body: any;
  /** Every check of Apple's documentation passed (method, path, topic, push type, ES256 JWT). */
  problems: string[];
}

/**
 * A local APNs: HTTP/2 over TLS, checking each request as Apple's "Sending notification
 * requests to APNs" describes: POST /3/device/<token>, apns-topic, apns-push-type, a bearer
 * ES256 JWT (kid header, iss = team id, iat) verified with the key's public half, JSON `aps`.
 * Tokens in `dead` are answered 410 Unregistered.
 */
export async function startApns(tls: { key: string; cert: string }, expect: { keyId: string; teamId: string; topic: string; publicKey: string }) {
  const requests: ApnsRequest[] = [];
  const dead = new Set<string>();
  const publicKey = await importSPKI(expect.publicKey, 'ES256');
  const server = http2.createSecureServer({ key: tls.key, cert: tls.cert });
  server.on('stream', (stream, headers) => {
    let raw = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (raw += c));
    stream.on('end', async () => {
      const problems: string[] = [];
      const p = String(headers[':path']);
      if (headers[':method'] !== 'POST') problems.push('method');
      const m = /^\/3\/device\/([0-9A-Za-z%._-]+)$/.exec(p);
      if (!m) problems.push('path');
      if (headers['apns-topic'] !== expect.topic) problems.push(`topic ${headers['apns-topic']}`);
      if (headers['apns-push-type'] !== 'alert') problems.push('push type');
      const auth = String(headers.authorization ?? '');
      try {
        const jwt = auth.replace(/^bearer /, '');
        if (decodeProtectedHeader(jwt).kid !== expect.keyId) problems.push('kid');
        const { payload } = await jwtVerify(jwt, publicKey, { algorithms: ['ES256'], issuer: expect.teamId });
        if (typeof payload.iat !== 'number') problems.push('iat');
      } catch (err) {
        problems.push(`jwt: ${(err as Error).message}`);
      }
      const body = safeJson(raw);
      if (typeof body?.aps !== 'object') problems.push('aps');
      const token = m ? decodeURIComponent(m[1]!) : '';
      requests.push({ path: p, headers, body, problems });
      if (dead.has(token)) {
        stream.respond({ ':status': 410, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ reason: 'Unregistered', timestamp: Date.now() }));
        return;
      }
      stream.respond({ ':status': problems.length ? 400 : 200, 'apns-id': randomBytes(16).toString('hex') });
      stream.end(problems.length ? JSON.stringify({ reason: 'BadRequest' }) : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    dead,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface FcmRequest {
  path: string;
  body: any;
  problems: string[];
}

/**
 * A local FCM v1 plus its OAuth token endpoint, over HTTPS. `/token` takes a jwt-bearer
 * grant whose RS256 assertion (iss = client_email, aud = this endpoint, scope
 * firebase.messaging, iat/exp) verifies with the service account's public key, and issues
 * an access token; `/v1/projects/<id>/messages:send` requires it as the bearer and checks the
 * message as the FCM v1 reference defines it (token, string-only data, android/apns blocks).
 * Tokens in `dead` are answered 404 UNREGISTERED.
 */
export async function startFcm(tls: { key: string; cert: string }, expect: { projectId: string; clientEmail: string; publicKey: string }) {
  const requests: FcmRequest[] = [];
  const tokenRequests: { problems: string[] }[] = [];
  const dead = new Set<string>();
  const issued = new Set<string>();
  const publicKey = await importSPKI(expect.publicKey, 'RS256');
  let tokenUrl = '';
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', async () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/token') {
        const problems: string[] = [];
        const form = new URLSearchParams(raw);
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') problems.push('grant_type');
        try {
          const { payload } = await jwtVerify(form.get('assertion') ?? '', publicKey, { algorithms: ['RS256'], issuer: expect.clientEmail, audience: tokenUrl });
          if (payload.scope !== 'https://www.googleapis.com/auth/firebase.messaging') problems.push('scope');
          if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number' || payload.exp - payload.iat > 3600) problems.push('exp');
        } catch (err) {
          problems.push(`assertion: ${(err as Error).message}`);
        }
        tokenRequests.push({ problems });
        if (problems.length) return reply(400, { error: 'invalid_grant' });
        const token = `ya29.${randomBytes(12).toString('hex')}`;
        issued.add(token);
        return reply(200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
      }
      const problems: string[] = [];
      if (req.method !== 'POST' || req.url !== `/v1/projects/${expect.projectId}/messages:send`) problems.push(`path ${req.url}`);
      const bearer = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!issued.has(bearer)) {
        requests.push({ path: req.url ?? '', body: safeJson(raw), problems: ['bearer'] });
        return reply(401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
      }
      const body = safeJson(raw);
      const message = body?.message;
      if (typeof message?.token !== 'string') problems.push('token');
      if (message?.data && Object.values(message.data).some((v) => typeof v !== 'string')) problems.push('data values must be strings');
      const allowed = new Set(['token', 'data', 'notification', 'android', 'apns', 'webpush', 'fcm_options', 'name', 'topic', 'condition']);
      for (const k of Object.keys(message ?? {})) if (!allowed.has(k)) problems.push(`unknown field ${k}`);
      requests.push({ path: req.url ?? '', body, problems });
      if (problems.length) return reply(400, { error: { code: 400, status: 'INVALID_ARGUMENT', message: problems.join(', ') } });
      if (dead.has(message.token)) {
        return reply(404, { error: { code: 404, status: 'NOT_FOUND', details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }] } });
      }
      return reply(200, { name: `projects/${expect.projectId}/messages/${randomBytes(8).toString('hex')}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  tokenUrl = `https://127.0.0.1:${port}/token`;
  return {
    baseUrl: `https://127.0.0.1:${port}`,
    tokenUrl,
    requests,
    tokenRequests,
    dead,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Key pairs as the providers issue them: an APNs .p8 (P-256) and a service account RSA key. */
export function providerKeys() {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    apnsPrivate: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    apnsPublic: ec.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fcmPrivate: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    fcmPublic: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
