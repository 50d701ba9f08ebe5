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
 * Operator CLI: manages applications through the running server's /operator/apps endpoints.
 *   roomcast-admin apps create --name NAME [--domain HOST ...]
 *   roomcast-admin apps list
 *   roomcast-admin apps delete ID
 * Server URL from --url or ROOMCAST_URL (default http://127.0.0.1:3100); the operator secret
 * from ROOMCAST_OPERATOR_SECRET (never a flag, so it stays out of shell history and `ps`).
 *
 * Data commands open the database the server's settings name (ROOMCAST_DATABASE_PATH or
 * ROOMCAST_DATABASE_URL, ROOMCAST_CONFIG), not the server:
 *   roomcast-admin export [--out FILE]     every record as JSON lines (stdout by default)
 *   roomcast-admin import [FILE]           JSON lines (stdin by default) into an empty database
 *   roomcast-admin backup --out FILE       online copy of the SQLite database
 */
const USAGE = [
  'usage: roomcast-admin apps <create --name NAME [--domain HOST]... | list | delete ID> [--url URL]',
  '       roomcast-admin export [--out FILE]',
  '       roomcast-admin import [FILE]',
  '       roomcast-admin backup --out FILE',
].join('\n');

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      domain: { type: 'string', multiple: true },
      url: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [group, command, id] = positionals;
  if (!values.help && group === 'export') return exportCommand(values.out);
  if (!values.help && group === 'import') return importCommand(command);
  if (!values.help && group === 'backup') return backupCommand(values.out);
  if (values.help || group !== 'apps' || !command) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const secret = process.env.ROOMCAST_OPERATOR_SECRET;
  if (!secret) {
    console.error('roomcast-admin: set ROOMCAST_OPERATOR_SECRET to the server\'s operator secret');
    return 2;
  }
  const base = (values.url ?? process.env.ROOMCAST_URL ?? 'http://127.0.0.1:3100').replace(/\/$/, '');
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const payload = (await res.json()) as { result?: unknown; error?: { code: string; message: string } };
    if (!res.ok) throw new Error(`${res.status} ${payload.error?.code}: ${payload.error?.message}`);
    return payload.result;
  };

  switch (command) {
    case 'create':
      if (!values.name) throw new Error('apps create needs --name');
      console.log(JSON.stringify(await call('POST', '/operator/apps', { name: values.name, domains: values.domain }), null, 2));
      return 0;
    case 'list':
      console.log(JSON.stringify(await call('GET', '/operator/apps'), null, 2));
      return 0;
    case 'delete':
      if (!id) throw new Error('apps delete needs an application id');
      await call('DELETE', `/operator/apps/${encodeURIComponent(id)}`);
      console.log(`deleted ${id}`);
      return 0;
    default:
      console.error(USAGE);
      return 2;
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
