import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type NodeProcess } from '../helpers/cluster.js';
import { makePng } from '../helpers/png.js';
import { freePort } from '../helpers/redis.js';
import { OPERATOR_SECRET, TRANSPORTS, type TestApp } from '../helpers/server.js';
import { connect, once, sleep, until } from '../helpers/sockets.js';

/** The compiled server as an operator runs it: command line, port conflicts, signals. */
const root = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(root, 'dist/main.js');
const CLI = path.join(root, 'dist/cli.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function operator(base: string, method: string, urlPath: string, body?: unknown) {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${OPERATOR_SECRET}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as { result: any };
}

async function setUp(base: string): Promise<{ app: TestApp; token: string }> {
  const created = (await operator(base, 'POST', '/operator/apps', { name: 'ops' })).result;
  const app = { appId: created.id, apiKey: created.apiKey, clientKey: created.clientKey };
  // The body IMKIT's API documents for POST /admin/clients (imkit/api-doc: _id, nickname, issueAccessToken).
  const res = await fetch(`${base}/admin/clients`, {
    method: 'POST',
    headers: { 'im-api-key': app.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ _id: 'alice', nickname: 'Alice', issueAccessToken: true }),
  });
  return { app, token: ((await res.json()) as { result: { token: string } }).result.token };
}

describe('the roomcast command', () => {
  it('--help, --version and an unknown command', async () => {
    const help = await run(MAIN, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: roomcast');
    expect(help.stdout).toContain('check-config');
    const version = await run(MAIN, ['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    const unknown = await run(MAIN, ['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });

  it('check-config validates the settings and exits, naming a bad setting without echoing secrets', async () => {
    const good = await run(MAIN, ['check-config'], { ROOMCAST_PORT: '4321' });
    expect(good.code).toBe(0);
    expect(good.stdout).toContain('configuration is valid');
    expect(good.stdout).toContain(':4321');
    const bad = await run(MAIN, ['check-config'], { ROOMCAST_PORT: 'eighty' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ROOMCAST_PORT');
    const secret = await run(MAIN, ['check-config'], { ROOMCAST_REDIS_URL: 'mysql://user:hunter2@db' });
    expect(secret.code).toBe(2);
    expect(secret.stderr).toContain('ROOMCAST_REDIS_URL');
    expect(secret.stderr).not.toContain('hunter2');
    const halfTls = await run(MAIN, ['check-config'], { ROOMCAST_TLS_CERT_FILE: MAIN });
    expect(halfTls.code).toBe(2);
    expect(halfTls.stderr).toContain('ROOMCAST_TLS_KEY_FILE');
  });
});

describe.each(TRANSPORTS)('operating a node on %s', (transport) => {
  const env = { ROOMCAST_TRANSPORT: transport, ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET, ROOMCAST_LOG_LEVEL: 'info' };

  it('refuses a port another server holds, naming the port and the reason; the first keeps every request', async () => {
    const first = await startNode('first', env);
    try {
      const second = await run(MAIN, [], { ...env, ROOMCAST_PORT: String(first.port), ROOMCAST_HOST: '127.0.0.1', ROOMCAST_DEMO: 'false' });
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: the port is already in use .*\\(EADDRINUSE\\)`));
      const statuses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${first.base}/healthz`).then((r) => r.status)));
      expect(statuses).toEqual(Array(20).fill(200));
    } finally {
      await first.kill('SIGKILL');
    }
  });

  it('SIGTERM drains: readiness first, sockets closed so the client reconnects, an in-flight upload finishes, exit 0', async () => {
    const node = await startNode('drain', { ...env, ROOMCAST_DRAIN_DELAY_MS: '400', ROOMCAST_DRAIN_WINDOW_MS: '200', ROOMCAST_FILES_DIR: mkdtempSync(path.join(tmpdir(), 'roomcast-drain-')) });
    try {
      const { app, token } = await setUp(node.base);
      const socket = connect(node.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': token }, reconnection: true, reconnectionDelay: 5000 });
      await once(socket, 'connect', 5000);
      const reasons: string[] = [];
      socket.on('disconnect', (reason: string) => reasons.push(reason));
      // An upload whose body is still arriving when the signal comes (multipart `file` part,
      // as the SDKs' upload sends it; see test/integration/files.test.ts).
      const upload = slowUpload(node.port, app, token);
      await upload.started;

      node.signal('SIGTERM');
      await until(async () => (await fetch(`${node.base}/readyz`).then((r) => r.status, () => 0)) === 503, 2000);
      expect(socket.connected).toBe(true); // readiness fails before anything is closed
      await until(() => reasons.length > 0, 3000);
      expect(reasons).toEqual(['transport close']); // not "io server disconnect": the client will reconnect
      expect(socket.active).toBe(true);
      // New connections are refused by now (the listening socket is closed).
      expect(await tcpConnect(node.port)).toBe('ECONNREFUSED');
      upload.finish();
      const uploaded = await upload.response.catch((err: Error) => {
        throw new Error(`${err.message}\n${node.output()}`);
      });
      expect(uploaded.status).toBe(200);
      expect(uploaded.body.result.length).toBe(upload.size);
      expect(await node.exited).toBe(0);
      expect(node.output()).toContain('drained');
      socket.disconnect();
    } finally {
      await node.kill('SIGKILL');
    }
  });

  it('a second signal exits at once; a drain that outlasts the timeout is cut short', async () => {
    const slow = await startNode('twice', { ...env, ROOMCAST_DRAIN_DELAY_MS: '20000' });
    slow.signal('SIGTERM');
    await until(async () => (await fetch(`${slow.base}/readyz`).then((r) => r.status, () => 0)) === 503, 2000);
    // A repeat within 250 ms is the same request (npm forwarding the terminal's Ctrl-C).
    slow.signal('SIGTERM');
    await sleep(400);
    expect(await fetch(`${slow.base}/readyz`).then((r) => r.status)).toBe(503); // still draining
    const second = Date.now();
    slow.signal('SIGTERM');
    expect(await slow.exited).toBe(143);
    expect(Date.now() - second).toBeLessThan(1000);

    const stuck = await startNode('stuck', { ...env, ROOMCAST_DRAIN_DELAY_MS: '20000', ROOMCAST_SHUTDOWN_TIMEOUT_MS: '500' });
    const signalled = Date.now();
    stuck.signal('SIGTERM');
    expect(await stuck.exited).toBe(1);
    expect(Date.now() - signalled).toBeLessThan(3000);
    expect(stuck.output()).toContain('shutdown timeout');
  });
});

/** Opens a plain TCP connection: 'connected' or the error code. */
function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** A multipart upload sent in two halves: `finish()` sends the rest. */
function slowUpload(port: number, app: TestApp, token: string) {
  const file = makePng(400, 300);
  const boundary = `roomcast${Date.now()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.png"\r\nContent-Type: image/png\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = Buffer.concat([head, file, tail]);
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/files/chatserver-upload',
    headers: {
      'IM-CLIENT-KEY': app.clientKey,
      'IM-Authorization': token,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': body.length,
    },
  });
  const half = Math.floor(body.length / 2);
  const started = new Promise<void>((resolve) => req.write(body.subarray(0, half), () => resolve()));
  const response = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
  return { started, response, size: file.length, finish: () => req.end(body.subarray(half)) };
}

describe('roomcast-admin', () => {
  let node: NodeProcess;
  let app: TestApp;
  const secretEnv = () => ({ ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET, ROOMCAST_API_KEY: app.apiKey });

  beforeAll(async () => {
    node = await startNode('cli', { ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET });
    app = (await setUp(node.base)).app;
  });
  afterAll(() => node?.kill('SIGKILL'));

  const admin = async (args: string[], env: Record<string, string> = { ROOMCAST_URL: node.base }) => {
    const r = await run(CLI, args, { ...secretEnv(), ...env });
    return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : undefined };
  };

  it('finds the server from --url, ROOMCAST_URL or ROOMCAST_PORT, and names the URL it cannot reach', async () => {
    expect((await admin(['apps', 'list'], { ROOMCAST_PORT: String(node.port) })).code).toBe(0);
    expect((await admin(['apps', 'list', '--url', node.base], {})).code).toBe(0);
    expect((await admin(['apps', 'list'])).json.data.some((a: { id: string }) => a.id === app.appId)).toBe(true);
    const dead = await freePort();
    const unreachable = await admin(['apps', 'list'], { ROOMCAST_PORT: String(dead) });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot connect to http://127.0.0.1:${dead}`);
    expect(unreachable.stderr).toContain('ECONNREFUSED');
    const noSecret = await run(CLI, ['client-key', 'show'], { ROOMCAST_URL: node.base });
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('ROOMCAST_API_KEY');
    const usage = await admin(['users', 'get']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('users get USER_ID');
  });

  it('manages applications', async () => {
    const created = await admin(['apps', 'create', '--name', 'shop', '--domain', 'chat.shop.example']);
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({ id: expect.any(String), apiKey: expect.any(String), clientKey: expect.any(String) });
    expect((await admin(['apps', 'list'])).json.data.map((a: { id: string }) => a.id)).toContain(created.json.id);
    expect((await admin(['apps', 'delete', created.json.id])).code).toBe(0);
    expect((await admin(['apps', 'list'])).json.data.map((a: { id: string }) => a.id)).not.toContain(created.json.id);
  });

  it('shows, revokes and generates the client key', async () => {
    const shown = await admin(['client-key', 'show']);
    expect(shown.code).toBe(0);
    expect(JSON.stringify(shown.json)).toContain(app.clientKey);
    const busy = await admin(['client-key', 'generate']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('409 CLIENT_KEY_ALREADY_ACTIVE');
    expect((await admin(['client-key', 'revoke'])).code).toBe(0);
    const generated = await admin(['client-key', 'generate']);
    expect(generated.code).toBe(0);
    expect(JSON.stringify(generated.json)).not.toContain(app.clientKey);
  });

  it('manages users and tokens, and reads usage and stats', async () => {
    expect((await admin(['users', 'upsert', 'bob', '--nickname', 'Bob'])).json).toMatchObject({ _id: 'bob', nickname: 'Bob' });
    expect((await admin(['users', 'get', 'bob'])).json).toMatchObject({ _id: 'bob', nickname: 'Bob' });
    expect(JSON.stringify((await admin(['users', 'list'])).json)).toContain('"bob"');
    const issued = await admin(['tokens', 'issue', 'bob']);
    expect(issued.json.token).toEqual(expect.any(String));
    const asBob = (key: string) => fetch(`${node.base}/me`, { headers: { 'IM-CLIENT-KEY': key, 'IM-Authorization': issued.json.token } });
    const key = JSON.stringify((await admin(['client-key', 'show'])).json).match(/eyJ[\w.-]+/)![0];
    expect((await asBob(key)).status).toBe(200);
    expect((await admin(['tokens', 'revoke', 'bob'])).code).toBe(0);
    expect((await asBob(key)).status).toBe(401);
    expect((await admin(['users', 'delete', 'bob'])).code).toBe(0);
    expect((await admin(['users', 'get', 'bob'])).code).toBe(1);
    const usage = await admin(['usage', '--granularity', 'hour']);
    expect(usage.code).toBe(0);
    expect(usage.json.totals.restApiKey).toBeGreaterThan(0);
    expect((await admin(['stats'])).json).toHaveProperty('peakConnectionCount');
  });
});
