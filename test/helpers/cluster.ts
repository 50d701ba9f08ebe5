import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, requireBinary, track, waitForPort } from './redis.js';

const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'dist/main.js');

/** A compiled roomcast process (`node dist/main.js`), as a deployment runs it. */
export interface NodeProcess {
  id: string;
  port: number;
  base: string;
  output(): string;
  /** Sends `signal` and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Sends `signal` without waiting. */
  signal(signal: NodeJS.Signals): void;
  /** The exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

export interface StartNodeOptions {
  /** A fixed port (a restart on the balancer's address); a free one by default. */
  port?: number;
  /** Extra arguments to dist/main.js. */
  args?: string[];
  /** Where to run (the repository by default) and as whom. */
  cwd?: string;
  uid?: number;
  gid?: number;
  /** The compiled entry point (another layout's copy). */
  main?: string;
  /** The node serves HTTPS with a certificate this CA (PEM) signed. */
  tlsCa?: string;
}

export async function startNode(id: string, env: Record<string, string>, opts: StartNodeOptions = {}): Promise<NodeProcess> {
  const entry = opts.main ?? main;
  if (!existsSync(entry)) throw new Error('dist/ is missing: run `npm test`, which builds first');
  const port = opts.port ?? (await freePort());
  // Each node on an SQLite file of its own unless the caller names the data (an empty value
  // keeps the default ./data/roomcast.db relative to cwd, as the Docker-layout test wants).
  const data = env.ROOMCAST_DATABASE_PATH === undefined ? { ROOMCAST_DATABASE_PATH: path.join(mkdtempSync(path.join(tmpdir(), `roomcast-${id}-`)), 'roomcast.db') } : {};
  const child = track(
    spawn(process.execPath, [entry, ...(opts.args ?? [])], {
      env: { ...process.env, ROOMCAST_PORT: String(port), ROOMCAST_HOST: '127.0.0.1', ROOMCAST_NODE_ID: id, ROOMCAST_DEMO: 'false', ...data, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: opts.cwd,
      uid: opts.uid,
      gid: opts.gid,
    }),
  );
  const exitCode = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const base = `${opts.tlsCa ? 'https' : 'http'}://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${id} exited with ${code}:\n${out}`))));
  exited.catch(() => {});
  await Promise.race([waitUntilReady(base, 15_000, opts.tlsCa), exited]);
  return {
    id,
    port,
    base,
    output: () => out,
    kill: (signal = 'SIGKILL') => stop(child, signal),
    signal: (signal) => void child.kill(signal),
    exited: exitCode,
  };
}

/** GET's status over HTTPS trusting `ca` (fetch cannot take a CA); 0 when it fails. */
function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    https.get(url, { ca, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0));
  });
}

async function waitUntilReady(base: string, timeoutMs: number, ca?: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const status = ca ? await httpsStatus(`${base}/readyz`, ca) : await fetch(`${base}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    if (Date.now() > end) throw new Error(`${base} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** A real HAProxy in front of the nodes: WebSocket-capable, round-robin, health-checked on /readyz. */
export interface Balancer {
  base: string;
  stop(): Promise<void>;
}

/**
 * `sticky`: how long-polling sessions stay on their node. 'cookie' inserts a SERVERID cookie
 * (deploy/haproxy.cfg), 'source' hashes the client address; WebSocket-only clients need neither.
 */
export function haproxyConfig(port: number, servers: { id: string; port: number }[], sticky?: 'cookie' | 'source'): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  retries 3',
    '  option redispatch',
    'frontend roomcast',
    `  bind 127.0.0.1:${port}`,
    '  default_backend nodes',
    'backend nodes',
    sticky === 'source' ? '  balance source' : '  balance roundrobin',
    ...(sticky === 'cookie' ? ['  cookie SERVERID insert indirect nocache'] : []),
    // HTTP/1.1 with a Host header: uWebSockets.js does not answer a bare HTTP/1.0 request.
    '  option httpchk',
    '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host roomcast',
    '  http-check expect status 200',
    '  default-server inter 250ms fall 2 rise 1',
    ...servers.map((s) => `  server ${s.id} 127.0.0.1:${s.port} check${sticky === 'cookie' ? ` cookie ${s.id}` : ''}`),
    '',
  ].join('\n');
}

export async function startHaproxy(servers: { id: string; port: number }[], sticky?: 'cookie' | 'source'): Promise<Balancer> {
  const binary = requireBinary('haproxy', 'apt-get install haproxy');
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  writeFileSync(file, haproxyConfig(port, servers, sticky));
  return runBalancer('haproxy', binary, ['-f', file, '-db'], port, dir);
}

/**
 * A real nginx running deploy/nginx.conf as shipped, with its upstream servers and listen
 * address swapped for the test's (ip_hash: every request of a client address reaches one node).
 */
export async function startNginx(servers: { id: string; port: number }[]): Promise<Balancer> {
  const binary = requireBinary('nginx', 'apt-get install nginx-light');
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-nginx-'));
  const shipped = readFileSync(path.join(root, 'deploy/nginx.conf'), 'utf8');
  const upstreams = servers.map((s) => `  server 127.0.0.1:${s.port} max_fails=2 fail_timeout=5s;`).join('\n');
  const site = shipped
    .replace(/^  server 127\.0\.0\.1:\d+ .*;\n?/gm, '')
    .replace('  ip_hash;\n', `  ip_hash;\n${upstreams}\n`)
    .replace(/listen 3100;/, `listen 127.0.0.1:${port};`);
  if (!site.includes(`listen 127.0.0.1:${port};`) || !site.includes(upstreams)) throw new Error('deploy/nginx.conf changed shape: update startNginx');
  writeFileSync(path.join(dir, 'site.conf'), site);
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    [
      'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log warn;`,
      'events { worker_connections 1024; }',
      'http {', '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
      `  include ${dir}/site.conf;`, '}', '',
    ].join('\n'),
  );
  return runBalancer('nginx', binary, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], port, dir);
}

/** Starts a balancer process, waits for its port (or its early exit, with its stderr), and stops it. */
async function runBalancer(name: string, binary: string, args: string[], port: number, dir: string): Promise<Balancer> {
  const child = track(spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${err}`))));
  exited.catch(() => {});
  await Promise.race([waitForPort(port, 10_000), exited]);
  return {
    base: `http://127.0.0.1:${port}`,
    async stop() {
      await stop(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
