// Starts the servers under test as child processes pinned to the server core.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOOK = fileURLToPath(new URL('./server-hook.mjs', import.meta.url));
export const OPERATOR_SECRET = 'bench-operator-secret';
/** BENCH_ROOMCAST_MAIN measures another build of roomcast (e.g. a candidate fix) in place of dist/. */
const ROOMCAST_MAIN = process.env.BENCH_ROOMCAST_MAIN ?? 'dist/main.js';
/** run.mjs points roomcast at a snapshot of dist/ taken at the start of the run. */
export function setRoomcastMain(main) {
  for (const v of Object.values(VARIANTS)) if (v.kind === 'roomcast') v.script = main;
}

/** PostgreSQL for the durable variants: the machine's server, a fresh schema per server start. */
export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export function freshSchema() {
  return `bench_${randomBytes(5).toString('hex')}`;
}
export async function dropSchema(schema) {
  const client = new pg.Client({ connectionString: BENCH_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Environment for roomcast under load: no demo, quiet logs, limits raised past the load. */
export function roomcastEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ROOMCAST_')) delete env[k];
  return {
    ...env,
    ROOMCAST_HOST: '127.0.0.1',
    ROOMCAST_DEMO: 'false',
    ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET,
    ROOMCAST_LOG_LEVEL: 'warn',
    ROOMCAST_MAX_SOCKETS_PER_USER: '100000',
    ROOMCAST_MAX_SOCKETS_PER_APP: '10000000',
    ROOMCAST_SOCKET_EVENTS_PER_SECOND: '100000',
    ROOMCAST_MESSAGES_PER_MINUTE_PER_USER: '10000000', // load generators send far above a person's rate
    ROOMCAST_MAX_UNAUTHENTICATED_SOCKETS_PER_ADDRESS: '10000000',
    ROOMCAST_HANDSHAKES_PER_MINUTE_PER_ADDRESS: '10000000',
    ROOMCAST_HANDSHAKES_PER_MINUTE_PER_KEY: '10000000',
    // The REST scenario drives one key far past IMKIT's 1000/min on purpose.
    ROOMCAST_REST_REQUESTS_PER_MINUTE_PER_API_KEY: '0',
    ROOMCAST_REST_REQUESTS_PER_MINUTE_PER_USER: '0',
    ...extra,
  };
}

/** The variants a scenario can run against. `kind` says which handshake the client speaks. */
export const VARIANTS = {
  ceiling: { label: 'uWS ceiling', kind: 'plain', script: 'bench/servers/ceiling-uws.mjs' },
  // The same server fed messages padded so that each delivered frame is as long as roomcast's
  // IMKIT message frame (615 bytes with the default message): the ceiling for the same bytes.
  'ceiling-615': { label: 'uWS ceiling, 615-byte frames', kind: 'plain', script: 'bench/servers/ceiling-uws.mjs', pad: 549 },
  socketio: { label: 'socket.io 4', kind: 'plain', script: 'bench/servers/socketio.mjs' },
  'socketio-uws': { label: 'socket.io 4 (attachApp uWS)', kind: 'plain', script: 'bench/servers/socketio.mjs', env: { SIO_ENGINE: 'uws' } },
  // In-memory SQLite: the same store code as the durable variants, without a disk.
  roomcast: { label: 'roomcast (uws)', kind: 'roomcast', script: ROOMCAST_MAIN, roomcast: { ROOMCAST_TRANSPORT: 'uws', ROOMCAST_DATABASE_PATH: ':memory:' } },
  'roomcast-node': { label: 'roomcast (node+ws)', kind: 'roomcast', script: ROOMCAST_MAIN, roomcast: { ROOMCAST_TRANSPORT: 'node', ROOMCAST_DATABASE_PATH: ':memory:' } },
  // The durable variants: the embedded default (an SQLite file, WAL, synchronous=NORMAL) and PostgreSQL.
  'roomcast-sqlite': { label: 'roomcast (uws, SQLite file)', kind: 'roomcast', script: ROOMCAST_MAIN, roomcast: { ROOMCAST_TRANSPORT: 'uws' }, durable: 'sqlite' },
  // Power-loss durability (an fsync per group commit; README: Data and backups), measured on request (--variants).
  'roomcast-sqlite-full': { label: 'roomcast (uws, SQLite file, synchronous=FULL)', kind: 'roomcast', script: ROOMCAST_MAIN, roomcast: { ROOMCAST_TRANSPORT: 'uws', ROOMCAST_SQLITE_SYNCHRONOUS: 'full' }, durable: 'sqlite' },
  'roomcast-pg': { label: 'roomcast (uws, PostgreSQL)', kind: 'roomcast', script: ROOMCAST_MAIN, roomcast: { ROOMCAST_TRANSPORT: 'uws' }, durable: 'postgres' },
};

/** Extra node flags for the servers under test, e.g. BENCH_SERVER_NODE_ARGS=--cpu-prof. */
const serverNodeArgs = () => (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Spawns `argv` pinned to `cpu` with a raised descriptor limit; IPC passes through the exec chain. */
export function pinnedSpawn(cpu, argv, options) {
  return spawn('bash', ['-c', `ulimit -n 65536 2>/dev/null || true; exec nice -n -20 taskset -c ${cpu} "$@"`, 'bench', ...argv], options);
}

export class ServerProc {
  constructor(variantName, { cpu = 1, extraEnv = {}, nodeArgs = [] } = {}) {
    this.name = variantName;
    this.nodeArgs = nodeArgs;
    this.variant = VARIANTS[variantName];
    this.cpu = cpu;
    this.extraEnv = extraEnv;
    this.output = '';
  }

  async start() {
    const v = this.variant;
    this.port = await freePort();
    const data = {};
    if (v.durable === 'sqlite') {
      this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'roomcast-bench-'));
      data.ROOMCAST_DATABASE_PATH = path.join(this.dataDir, 'roomcast.db');
    } else if (v.durable === 'postgres') {
      this.schema = freshSchema();
      Object.assign(data, { ROOMCAST_DATABASE_URL: BENCH_DATABASE_URL, ROOMCAST_DATABASE_SCHEMA: this.schema });
    }
    const env = v.roomcast
      ? roomcastEnv({ ...v.roomcast, ROOMCAST_PORT: String(this.port), ...data, ...this.extraEnv })
      : { ...process.env, ...(v.env ?? {}), PORT: String(this.port), ...this.extraEnv };
    this.child = pinnedSpawn(this.cpu, [process.execPath, ...serverNodeArgs(), ...this.nodeArgs, '--expose-gc', '--import', HOOK, v.script], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keep = (d) => {
      this.output = (this.output + d.toString()).slice(-4000);
      // BENCH_SERVER_LOG=path keeps all of it (e.g. with BENCH_SERVER_NODE_ARGS=--trace-gc).
      if (process.env.BENCH_SERVER_LOG) appendFileSync(process.env.BENCH_SERVER_LOG, d);
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => resolve({ code, sig })));
    this.pid = this.child.pid;
    await this.waitReady();
    return this;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async waitReady(timeoutMs = 20_000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited (${this.child.exitCode}): ${this.output.trim()}`);
      try {
        const res = await fetch(`${this.base}/healthz`);
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`${this.name} not ready within ${timeoutMs} ms: ${this.output.trim()}`);
  }

  /** Full GC in the server (via the preloaded hook), then its VmRSS and memoryUsage. */
  gcAndMeasure() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no GC answer`)), 10_000);
      const on = (msg) => {
        if (msg?.cmd !== 'gc-done') return;
        clearTimeout(timer);
        this.child.off('message', on);
        resolve({ rss: rssOf(this.pid), heapUsed: msg.memory.heapUsed, external: msg.memory.external });
      };
      this.child.on('message', on);
      this.child.send({ cmd: 'gc' });
    });
  }

  alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop() {
    if (this.child && this.alive()) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(t);
    }
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    if (this.schema && !this.extraEnv.ROOMCAST_DATABASE_SCHEMA) await dropSchema(this.schema).catch(() => {});
  }
}

function rssOf(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * What a two-node run shares: a redis-server pinned to `cpu` (bus and presence) and a fresh
 * schema of the machine's PostgreSQL (data). `env` is for both nodes; `stop` removes both.
 */
export async function clusterBackends(cpu) {
  const port = await freePort();
  const redis = pinnedSpawn(cpu, ['/usr/bin/redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  redis.stdout.on('data', (d) => (out = (out + d).slice(-2000)));
  const exited = new Promise((r) => redis.on('exit', r));
  const schema = freshSchema();
  return {
    pid: redis.pid,
    env: { ROOMCAST_REDIS_URL: `redis://127.0.0.1:${port}`, ROOMCAST_DATABASE_URL: BENCH_DATABASE_URL, ROOMCAST_DATABASE_SCHEMA: schema },
    async ready() {
      for (let t = 0; !out.includes('Ready to accept connections'); t++) {
        if (t > 200) throw new Error(`redis-server did not start: ${out}`);
        await sleep(25);
      }
    },
    async stop() {
      redis.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      await dropSchema(schema).catch(() => {});
    },
  };
}
