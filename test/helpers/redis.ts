import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A server process started and stopped by one test file: its own free loopback port and data directory. */
export interface ServerProcess {
  url: string;
  port: number;
  dir: string;
  /** Kills it (SIGKILL by default: a crash, not a clean shutdown) and waits for its exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data directory (after `kill`). */
  restart(): Promise<void>;
  /** Stops it for good and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * A real redis-server for one test file, started and stopped by the test (never one somebody
 * else started). A missing binary is an error, never a skip (.ci/run installs redis-server).
 */
export type RedisProcess = ServerProcess;

export interface RedisProcessOptions {
  /** AOF persistence (default on, fsync on every write: what the README prescribes). */
  appendonly?: boolean;
  appendfsync?: 'always' | 'everysec' | 'no';
  /** A one-node Redis Cluster owning all 16384 slots (its URL is redis-cluster://…). */
  cluster?: boolean;
  extraArgs?: string[];
}

/** Children still running; killed when the test process exits, whatever happens to the test. */
const live = new Set<ChildProcess>();
let exitHook = false;
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  // A watchdog kills the child if this process dies without running its exit hooks (SIGKILL,
  // a killed test worker): no redis-server, node or haproxy outlives the test run.
  if (child.pid !== undefined) {
    const loop = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`;
    spawn('sh', ['-c', loop], { stdio: 'ignore', detached: true }).unref();
  }
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  return child;
}

export interface SupervisedOptions {
  url: string;
  port: number;
  /** Its data directory, removed by `stop`. */
  dir: string;
  spawn(): ChildProcess;
  /** Resolves once it serves. */
  ready(): Promise<void>;
  /** Words the failure when it exits before it is ready (e.g. where its log is). */
  exited(code: number | null): string;
  /** How `stop` ends it (a fast clean shutdown, or SIGKILL when nothing needs saving). */
  stopSignal: NodeJS.Signals;
}

/** Starts a server process and hands back its controls (kill, restart, stop). */
export async function startSupervised(options: SupervisedOptions): Promise<ServerProcess> {
  let child: ChildProcess | undefined;
  const launch = async () => {
    const c = track(options.spawn());
    child = c;
    await Promise.race([options.ready(), new Promise((_, reject) => c.once('exit', (code) => reject(new Error(options.exited(code)))))]);
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await launch();
  return {
    url: options.url,
    port: options.port,
    dir: options.dir,
    kill,
    restart: launch,
    async stop() {
      await kill(options.stopSignal);
      rmSync(options.dir, { recursive: true, force: true });
    },
  };
}

export function requireBinary(name: string, hint: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    // Debian puts daemons in sbin, which a non-login PATH may lack.
    for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin']) {
      if (existsSync(path.join(dir, name))) return path.join(dir, name);
    }
    throw new Error(`${name} is not installed (${hint}); the cluster tests need it and never skip`);
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port and answers PING (Redis) or anything. */
export async function waitForPort(port: number, timeoutMs: number, ping = false): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.once('error', () => done(false));
      socket.setTimeout(500, () => done(false));
      socket.once('connect', () => {
        if (!ping) return done(true);
        socket.write('PING\r\n');
        socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
      });
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing answered on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(options: RedisProcessOptions = {}): Promise<RedisProcess> {
  const binary = requireBinary('redis-server', 'apt-get install redis-server');
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-redis-'));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', options.appendonly === false ? 'no' : 'yes',
    '--appendfsync', options.appendfsync ?? 'always',
    '--dir', dir,
    '--daemonize', 'no',
    '--protected-mode', 'no',
    '--logfile', path.join(dir, 'redis.log'),
    ...(options.cluster ? ['--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1', '--cluster-config-file', path.join(dir, 'nodes.conf')] : []),
    ...(options.extraArgs ?? []),
  ];
  const redis = await startSupervised({
    url: options.cluster ? `redis-cluster://127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    port,
    dir,
    spawn: () => spawn(binary, args, { stdio: 'ignore' }),
    ready: () => waitForPort(port, 10_000, true),
    exited: (code) => `redis-server exited with ${code} (see ${dir}/redis.log)`,
    stopSignal: 'SIGKILL',
  });
  if (options.cluster) await claimAllSlots(port);
  return redis;
}

/** Makes a fresh cluster-enabled server a one-node cluster serving every slot. */
async function claimAllSlots(port: number): Promise<void> {
  const { Redis } = await import('ioredis');
  const admin = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
  admin.on('error', () => {});
  try {
    await admin.connect();
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    const end = Date.now() + 10_000;
    while (!/cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO')))) {
      if (Date.now() > end) throw new Error('one-node redis cluster did not become ready');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    admin.disconnect();
  }
}
