import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, type ServerProcess, startSupervised, waitForPort } from './redis.js';

/**
 * PostgreSQL for tests. Two kinds:
 * - the machine's server (ROOMCAST_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres,
 *   which .ci/run makes sure is running), where every suite works in schemas of its own
 *   (`freshSchema`), so runs never see each other's data;
 * - a private server started by the test (`startPostgres`: initdb into a temp dir, own free
 *   port), for tests that kill or restart it. Never the shared one.
 */
export const SHARED_DATABASE_URL = process.env.ROOMCAST_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/** A new, unused schema name on the shared server; `dropSchemas` removes those this process made. */
const made: string[] = [];
export function freshSchema(): string {
  const name = `t_${randomBytes(6).toString('hex')}`;
  made.push(name);
  return name;
}
/** Drops the named schemas, or every schema `freshSchema` made in this process. */
export async function dropSchemas(url = SHARED_DATABASE_URL, names?: string[]): Promise<void> {
  const doomed = names ?? made.splice(0);
  if (doomed.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const name of doomed) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A private PostgreSQL server: `kill('SIGKILL')` is a crash, `kill('SIGINT')` a fast shutdown (clients are disconnected). */
export type PostgresProcess = ServerProcess;

function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(path.join(root, v, 'bin/initdb'))) return path.join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries are not installed (apt-get install postgresql); the tests need them and never skip');
}

/** initdb refuses to run as root: the server runs as the `postgres` user when we are root. */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  return { uid, gid };
}

export async function startPostgres(): Promise<PostgresProcess> {
  const bin = postgresBinDir();
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-pg-'));
  const data = path.join(dir, 'data');
  const who = runAs();
  if (who.uid !== undefined) chownSync(dir, who.uid, who.gid!);
  execFileSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    ...who,
    stdio: 'ignore',
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return startSupervised({
    url,
    port,
    dir,
    spawn: () =>
      spawn(
        path.join(bin, 'postgres'),
        ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on', '-c', 'max_connections=50'],
        { ...who, stdio: 'ignore' },
      ),
    ready: async () => {
      await waitForPort(port, 20_000);
      await waitForQuery(url, 20_000);
    },
    exited: (code) => `postgres exited with ${code}`,
    stopSignal: 'SIGINT',
  });
}

async function waitForQuery(url: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
      if (Date.now() > end) throw new Error(`postgres at ${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
