import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { type Ports, type RoomcastServer, startServer } from '../../src/server.js';
import { uwsAvailable } from '../../src/http/uws-native.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from './postgres.js';

export type Transport = 'uws' | 'node';
/**
 * Every integration test runs on both transports where the native uWS build exists for this
 * Node (see README: Supported runtimes); elsewhere on node only. `.ci/run` refuses a CI
 * machine's primary Node without the native build, so the uws runs cannot silently vanish there.
 */
export const TRANSPORTS: readonly Transport[] = uwsAvailable() ? ['uws', 'node'] : ['node'];
/** Two cluster nodes: one on each transport where both run here, else both on `node`. */
export const TWO_NODES: readonly [Transport, Transport] = [TRANSPORTS[0]!, TRANSPORTS[TRANSPORTS.length - 1]!];

export interface TestApp {
  appId: string;
  apiKey: string;
  clientKey: string;
}

export interface TestServer {
  server: RoomcastServer;
  base: string;
  /** Creates an application through the operator endpoint, as an operator would. */
  createApp(name?: string, domains?: string[]): Promise<TestApp>;
  /** Upserts a user with an issued token (API key). */
  createUser(app: TestApp, id: string, nickname?: string): Promise<string>;
  /** Stops the server and removes its directory; its PostgreSQL schema stays (a restart on it finds the data). */
  stop(): Promise<void>;
  /** Stops it and drops its PostgreSQL schema. */
  close(): Promise<void>;
}

export const OPERATOR_SECRET = 'test-operator-secret';

/** A real server on a free loopback port, talking real HTTP. */
export async function startTestServer(transport: Transport, overrides: Partial<Config> = {}, ports: Ports & { log?: Logger } = {}): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-test-'));
  const config = loadConfig({}, {
    port: 0,
    host: '127.0.0.1',
    transport,
    operatorSecret: OPERATOR_SECRET,
    logLevel: 'silent',
    demo: false,
    // The embedded default: an SQLite file (WAL, synchronous=NORMAL) in a directory of this server's own.
    databasePath: path.join(dir, 'roomcast.db'),
    filesDir: path.join(dir, 'files'),
    // ROOMCAST_TEST_REDIS_URL=redis://… runs every server-level test in cluster mode: that Redis
    // for bus and presence, and a schema of its own on the shared PostgreSQL for data.
    ...(process.env.ROOMCAST_TEST_REDIS_URL
      ? {
          redisUrl: process.env.ROOMCAST_TEST_REDIS_URL,
          redisPrefix: `t${Math.random().toString(36).slice(2, 10)}`,
          databaseUrl: SHARED_DATABASE_URL,
          databaseSchema: freshSchema(),
        }
      : {}),
    ...overrides,
  });
  let server: RoomcastServer;
  try {
    server = await startServer(config, ports.log ?? createLogger(config.logLevel), ports);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const base = `${server.tls ? 'https' : 'http'}://127.0.0.1:${server.port}`;
  return {
    server,
    base,
    async createApp(name = 'test', domains) {
      const res = await fetch(`${base}/operator/apps`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPERATOR_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, domains }),
      });
      const body = (await res.json()) as { result: { id: string; apiKey: string; clientKey: string } };
      if (res.status !== 200) throw new Error(`createApp: ${res.status} ${JSON.stringify(body)}`);
      return { appId: body.result.id, apiKey: body.result.apiKey, clientKey: body.result.clientKey };
    },
    async createUser(app, id, nickname = id) {
      const res = await fetch(`${base}/admin/clients`, {
        method: 'POST',
        headers: { 'im-api-key': app.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ _id: id, nickname, issueAccessToken: true }),
      });
      const body = (await res.json()) as { result: { token: string } };
      if (res.status !== 200) throw new Error(`createUser: ${res.status} ${JSON.stringify(body)}`);
      return body.result.token;
    },
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
    async close() {
      await this.stop();
      if (config.databaseUrl && config.databaseSchema !== 'public') await dropSchemas(config.databaseUrl, [config.databaseSchema]);
    },
  };
}

export interface ApiResult<T = any> {
  status: number;
  body: { RC: number; RM: string; result: T; error?: { code: string; message: string } };
  headers: Headers;
}

/** A small REST client: `as(headers)` fixes the credentials. */
export function api(base: string, credentials: Record<string, string>) {
  const call = async <T = any>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<ApiResult<T>> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...credentials, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extra },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  return {
    get: <T = any>(path: string, extra?: Record<string, string>) => call<T>('GET', path, undefined, extra),
    post: <T = any>(path: string, body?: unknown, extra?: Record<string, string>) => call<T>('POST', path, body ?? {}, extra),
    put: <T = any>(path: string, body?: unknown) => call<T>('PUT', path, body ?? {}),
    del: <T = any>(path: string, body?: unknown) => call<T>('DELETE', path, body),
  };
}

/** The error code of a refused call (undefined when it was not refused). */
export const errorCode = (r: { body?: { error?: { code: string } } }): string | undefined => r.body?.error?.code;

export const admin = (base: string, app: TestApp) => api(base, { 'IM-API-KEY': app.apiKey });
export const user = (base: string, app: TestApp, token: string) =>
  api(base, { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token });

/** GET through node:http, which (unlike fetch) lets a test set the Host header. */
export function getWithHost(base: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return import('node:http').then(
    (http) =>
      new Promise((resolve, reject) => {
        const req = http.request(`${base}${path}`, { headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end();
      }),
  );
}

/**
 * Resolves once every event published for `userId` before this call has reached `socket`: a
 * `client` event goes to the user's own topic after them (a node publishes in order, a socket
 * receives in order). Shows that something did NOT arrive without sleeping for a while.
 */
export async function drainSocket(base: string, app: TestApp, socket: { once(event: string, fn: () => void): unknown }, userId: string): Promise<void> {
  const marker = new Promise<void>((resolve) => socket.once('client', () => resolve()));
  const r = await admin(base, app).del(`/admin/clients/${encodeURIComponent(userId)}/mute/__drain`);
  if (r.status !== 200) throw new Error(`drainSocket: ${r.status} ${JSON.stringify(r.body)}`);
  await marker;
}
