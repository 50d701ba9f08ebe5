#!/usr/bin/env node
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { createLogger } from './observability/logger.js';
import { openStore } from './store/open.js';
import { SqliteDb } from './store/sql/sqlite.js';
import { exportData, importData } from './store/sql/transfer.js';

/**
 * roomcast-admin: the operator CLI, a thin client of the running server's REST API.
 * Server: --url, else ROOMCAST_URL, else ROOMCAST_PORT on 127.0.0.1 (https when
 * ROOMCAST_TLS_CERT_FILE is set), else http://127.0.0.1:3100.
 * Secrets come from the environment only (never flags, so they stay out of shell history
 * and `ps`): ROOMCAST_OPERATOR_SECRET for `apps`, ROOMCAST_API_KEY for the other server commands.
 * Data commands (export, import, backup) open the database the server's settings name
 * (ROOMCAST_DATABASE_PATH or ROOMCAST_DATABASE_URL, ROOMCAST_CONFIG), not the server.
 * Add a command by adding an entry to COMMANDS.
 */
type Auth = 'operator' | 'apiKey';
type Values = ReturnType<typeof parse>['values'];

interface Ctx {
  args: string[];
  values: Values;
  call(method: string, path: string, body?: unknown): Promise<unknown>;
}

/** A command answered by the running server (its result is printed as JSON)… */
interface ServerCommand {
  usage: string;
  auth: Auth;
  run(ctx: Ctx): Promise<unknown>;
}

/** …or one that works on the data directly and prints its own output. */
interface DataCommand {
  usage: string;
  auth: 'none';
  local(args: string[], values: Values): Promise<number>;
}

type Command = ServerCommand | DataCommand;

const OPTIONS = {
  url: { type: 'string' },
  name: { type: 'string' },
  domain: { type: 'string', multiple: true },
  nickname: { type: 'string' },
  avatar: { type: 'string' },
  skip: { type: 'string' },
  limit: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  granularity: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

const arg = (ctx: Ctx, i: number, what: string): string => {
  const value = ctx.args[i];
  if (!value) throw new UsageError(`missing ${what}`);
  return encodeURIComponent(value);
};

const COMMANDS: Record<string, Command> = {
  'apps create': {
    usage: 'apps create --name NAME [--domain HOST]...',
    auth: 'operator',
    run: (c) => {
      if (!c.values.name) throw new UsageError('apps create needs --name');
      return c.call('POST', '/operator/apps', { name: c.values.name, domains: c.values.domain });
    },
  },
  'apps list': { usage: 'apps list', auth: 'operator', run: (c) => c.call('GET', '/operator/apps') },
  'apps delete': { usage: 'apps delete APP_ID', auth: 'operator', run: (c) => c.call('DELETE', `/operator/apps/${arg(c, 0, 'APP_ID')}`) },

  'client-key show': { usage: 'client-key show', auth: 'apiKey', run: (c) => c.call('GET', '/admin/client-key') },
  'client-key revoke': { usage: 'client-key revoke', auth: 'apiKey', run: (c) => c.call('DELETE', '/admin/client-key') },
  'client-key generate': { usage: 'client-key generate', auth: 'apiKey', run: (c) => c.call('POST', '/admin/client-key', {}) },

  'users list': {
    usage: 'users list [--skip N] [--limit N]',
    auth: 'apiKey',
    run: (c) => c.call('GET', `/admin/clients?${new URLSearchParams({ skip: c.values.skip ?? '0', limit: c.values.limit ?? '50' })}`),
  },
  'users get': { usage: 'users get USER_ID', auth: 'apiKey', run: (c) => c.call('GET', `/admin/clients/${arg(c, 0, 'USER_ID')}`) },
  'users upsert': {
    usage: 'users upsert USER_ID [--nickname NAME] [--avatar URL]',
    auth: 'apiKey',
    // The body IMKIT's API documents for POST /admin/clients (_id, nickname, avatarUrl).
    run: (c) =>
      c.call('POST', '/admin/clients', { _id: c.args[0] ?? missing('USER_ID'), nickname: c.values.nickname, avatarUrl: c.values.avatar }),
  },
  'users delete': { usage: 'users delete USER_ID', auth: 'apiKey', run: (c) => c.call('DELETE', `/admin/clients/${arg(c, 0, 'USER_ID')}`) },

  'tokens issue': {
    usage: 'tokens issue USER_ID      (creates the user if needed; prints the new token)',
    auth: 'apiKey',
    run: (c) => c.call('POST', '/admin/clients', { _id: c.args[0] ?? missing('USER_ID'), issueAccessToken: true }),
  },
  'tokens revoke': {
    usage: 'tokens revoke USER_ID     (every token of the user; their sockets are cut)',
    auth: 'apiKey',
    run: (c) => c.call('DELETE', `/admin/clients/${arg(c, 0, 'USER_ID')}/token`, {}),
  },

  usage: {
    usage: 'usage [--from TIME] [--to TIME] [--granularity minute|hour|day]   (TIME: ISO date or epoch ms)',
    auth: 'apiKey',
    run: (c) => {
      const query = new URLSearchParams();
      for (const key of ['from', 'to', 'granularity'] as const) if (c.values[key]) query.set(key, c.values[key]);
      return c.call('GET', `/admin/usage?${query}`);
    },
  },
  stats: { usage: 'stats                    (IMKIT last-hour report)', auth: 'apiKey', run: (c) => c.call('GET', '/admin/stats') },

  export: { usage: 'export [--out FILE]      every record as JSON lines (stdout by default)', auth: 'none', local: (_a, v) => exportCommand(v.out) },
  import: { usage: 'import [FILE]            JSON lines (stdin by default) into an empty database', auth: 'none', local: (a) => importCommand(a[0]) },
  backup: { usage: 'backup --out FILE        online copy of the SQLite database', auth: 'none', local: (_a, v) => backupCommand(v.out) },
};

function missing(what: string): never {
  throw new UsageError(`missing ${what}`);
}

function usage(): string {
  return [
    'usage: roomcast-admin <command> [--url URL]',
    '',
    ...Object.values(COMMANDS).map((c) => `  ${c.usage}`),
    '',
    'server: --url, ROOMCAST_URL, or ROOMCAST_PORT (on 127.0.0.1); default http://127.0.0.1:3100',
    'secrets from the environment: ROOMCAST_OPERATOR_SECRET (apps), ROOMCAST_API_KEY (the other server commands)',
    'export, import and backup open the database the server settings name, not the server',
  ].join('\n');
}

function parse(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
}

/** Where the server is: the flag, then ROOMCAST_URL, then ROOMCAST_PORT on this machine. */
function serverUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return flag.replace(/\/$/, '');
  if (env.ROOMCAST_URL) return env.ROOMCAST_URL.replace(/\/$/, '');
  const scheme = env.ROOMCAST_TLS_CERT_FILE ? 'https' : 'http';
  return `${scheme}://127.0.0.1:${env.ROOMCAST_PORT || '3100'}`;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    console.error(`roomcast-admin: ${(err as Error).message}\n\n${usage()}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const twoWords = COMMANDS[`${positionals[0]} ${positionals[1]}`];
  const command = twoWords ?? COMMANDS[positionals[0] ?? ''];
  if (values.help || !command) {
    (values.help ? console.log : console.error)(usage());
    return values.help ? 0 : 2;
  }
  if (command.auth === 'none') return command.local(positionals.slice(twoWords ? 2 : 1), values);
  const secretName = command.auth === 'operator' ? 'ROOMCAST_OPERATOR_SECRET' : 'ROOMCAST_API_KEY';
  const secret = process.env[secretName];
  if (!secret) {
    console.error(`roomcast-admin: set ${secretName} (${command.auth === 'operator' ? "the server's operator secret" : "the application's API key"})`);
    return 2;
  }
  const base = serverUrl(values.url, process.env);
  const auth: Record<string, string> = command.auth === 'operator' ? { authorization: `Bearer ${secret}` } : { 'im-api-key': secret };
  const call = async (method: string, path: string, body?: unknown) => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `cannot connect to ${base} (${cause?.code ?? cause?.message ?? (err as Error).message}): is roomcast running there? Set --url, ROOMCAST_URL or ROOMCAST_PORT`,
      );
    }
    const text = await res.text();
    let payload: { result?: unknown; error?: { code: string; message: string } } | undefined;
    try {
      payload = JSON.parse(text) as typeof payload;
    } catch {
      throw new Error(`${base}${path} answered ${res.status} with something that is not roomcast's JSON`);
    }
    if (!res.ok) throw new Error(`${res.status} ${payload?.error?.code}: ${payload?.error?.message}`);
    return payload?.result;
  };
  try {
    const result = await command.run({ args: positionals.slice(twoWords ? 2 : 1), values, call });
    console.log(JSON.stringify(result ?? null, null, 2));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`roomcast-admin: ${err.message}\n  usage: roomcast-admin ${command.usage}`);
      return 2;
    }
    throw err;
  }
}

/** The server's database, opened with the server's settings (migrations applied as at start). */
async function openConfiguredStore() {
  const config = loadConfig();
  return { config, ...(await openStore(config, createLogger('silent'))) };
}

async function exportCommand(out: string | undefined): Promise<number> {
  const { store } = await openConfiguredStore();
  const sink: Writable = out ? createWriteStream(out) : process.stdout;
  let lines = 0;
  try {
    for await (const line of exportData(store.db)) {
      // Respect back-pressure: a large history is streamed, never held in memory.
      if (!sink.write(`${JSON.stringify(line)}\n`)) await once(sink, 'drain');
      lines++;
    }
  } finally {
    await store.close();
  }
  // Flushed before the process exits (a pipe's writes are asynchronous).
  if (out) await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
  else await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  console.error(`exported ${lines} lines`);
  return 0;
}

async function importCommand(file: string | undefined): Promise<number> {
  const { store, location } = await openConfiguredStore();
  try {
    const counts = await importData(store.db, () => createInterface({ input: file ? createReadStream(file) : process.stdin, crlfDelay: Infinity }));
    console.error(`imported into ${location}: ${JSON.stringify(counts)}`);
  } finally {
    await store.close();
  }
  return 0;
}

async function backupCommand(out: string | undefined): Promise<number> {
  if (!out) throw new Error('backup needs --out FILE');
  const { store, location } = await openConfiguredStore();
  try {
    if (!(store.db instanceof SqliteDb)) throw new Error('backup copies the SQLite database; for PostgreSQL use pg_dump (README: Data and backups)');
    await store.db.backup(out);
    console.error(`backed up ${location} to ${out}`);
  } finally {
    await store.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`roomcast-admin: ${err.message}`);
    process.exit(1);
  },
);
