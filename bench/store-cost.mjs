// The durable store's cost per stored message, on its own: SqlStore.addMessage on a fresh
// SQLite file (WAL, synchronous=NORMAL, as the embedded default), at the batch sizes the
// group commit sees (REST at 32 connections: ~10–20 per commit; S2: ~500).
//
//   node bench/store-cost.mjs [--builds dist,dist-other] [--batches 1,16,512] [--messages 20000] [--reps 3]
//   node bench/store-cost.mjs --database-url postgres://postgres@127.0.0.1:5432/postgres …
//
// With --database-url the store is PostgreSQL (a fresh schema per run, dropped after): the
// figure is then this process's CPU only (the driver, the statements' text and parameters),
// not the database server's.
//
// Each configuration runs --reps times, builds alternating, each run on a new file; the figure
// is the process CPU time (user + system, all threads) per message over the run, median and
// range. One process, no network: a quick, low-noise check of store-level changes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { dropSchema, spread } from './lib/in-process.mjs';

const { values } = parseArgs({
  options: {
    builds: { type: 'string', default: 'dist' },
    batches: { type: 'string', default: '1,16,512' },
    messages: { type: 'string', default: '20000' },
    rooms: { type: 'string', default: '100' },
    reps: { type: 'string', default: '3' },
    'database-url': { type: 'string' },
  },
});
const builds = values.builds.split(',');
const batches = values.batches.split(',').map(Number);
const total = Number(values.messages);
const roomCount = Number(values.rooms);
const reps = Number(values.reps);
const root = path.resolve(import.meta.dirname, '..');

const APP = 'app-bench';
const WORDS = 'hello there how are you doing today see you at the meeting tomorrow 好的 明天 见 thanks a lot'.split(' ');

/** A chat-like text of 6–14 words, different each time. */
function text(i) {
  const n = 6 + (i % 9);
  const words = [];
  for (let k = 0; k < n; k++) words.push(WORDS[(i * 7 + k * 13) % WORDS.length]);
  return `${words.join(' ')} #${i}`;
}

async function loadBuild(dir) {
  const at = (p) => pathToFileURL(path.resolve(root, dir, p)).href;
  const { SqlStore } = await import(at('store/sql/store.js'));
  const { SqliteDb } = await import(at('store/sql/sqlite.js'));
  const { PostgresDb } = await import(at('store/sql/postgres.js'));
  const { newMessageId } = await import(at('core/secrets.js'));
  return { SqlStore, SqliteDb, PostgresDb, newMessageId };
}

async function runOnce(build, batch) {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-store-cost-'));
  const url = values['database-url'];
  const schema = `store_cost_${process.pid}_${Date.now()}`;
  const db = url ? new build.PostgresDb(url, { schema }) : new build.SqliteDb(path.join(dir, 'bench.db'));
  const store = await build.SqlStore.open(db);
  try {
    for (let r = 0; r < roomCount; r++) {
      const members = Array.from({ length: 10 }, (_, k) => `u${(r * 10 + k) % 1000}`);
      await store.createRoom(APP, {
        id: `r${r}`, roomType: 'group', managers: [], members,
        memberState: Object.fromEntries(members.map((m) => [m, { joinedAt: 1 }])),
        roomTags: [], status: 1, systemMessage: false, lastActivityAt: 1, createdAt: 1, updatedAt: 1,
      });
    }
    const makeId = build.newMessageId ?? (() => crypto.randomUUID().replaceAll('-', '').slice(0, 24));
    const send = (i) => {
      const now = Date.now();
      const room = `r${i % roomCount}`;
      return store.addMessage(APP, {
        id: makeId(now), room, sender: `u${(i % roomCount) * 10 % 1000}`, messageType: 'text', message: text(i),
        fields: { extra: { clientId: `c${i}` } }, createdAt: now, updatedAt: now,
      });
    };
    // Warm-up (JIT, statement cache), then the measured messages.
    for (let i = 0; i < 2000; i += batch) await Promise.all(Array.from({ length: Math.min(batch, 2000 - i) }, (_, k) => send(i + k)));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < total; i += batch) await Promise.all(Array.from({ length: Math.min(batch, total - i) }, (_, k) => send(2000 + i + k)));
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    return { cpuUsPerMessage: (cpu.user + cpu.system) / total, wallUsPerMessage: (wallMs * 1000) / total };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    if (url) await dropSchema(url, schema);
  }
}

const loaded = await Promise.all(builds.map(loadBuild));
const results = new Map();
for (let rep = 0; rep < reps; rep++) {
  for (const batch of batches) {
    for (const [b, build] of loaded.entries()) {
      const r = await runOnce(build, batch);
      const key = `${builds[b]}\t${batch}`;
      results.set(key, [...(results.get(key) ?? []), r.cpuUsPerMessage]);
    }
  }
}
console.log(`store cost (${values['database-url'] ? 'PostgreSQL, this process only' : 'SQLite file'}): CPU µs per message, ${total} messages over ${roomCount} rooms, median (min–max) of ${reps}`);
console.log('build\tbatch\tµs/message');
for (const [key, xs] of results) {
  console.log(`${key}\t${spread(xs)}`);
}
