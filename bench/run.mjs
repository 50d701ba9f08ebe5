#!/usr/bin/env node
// roomcast benchmark suite: `npm run bench` (full, ~10 min) or `npm run bench -- --quick`.
// See bench/README.md for the method. Options:
//   --quick            1 repetition, short runs, fewer sockets (or BENCH_QUICK=1)
//   --reps N           repetitions (default 3)
//   --only a,b         scenarios: s1,s2,s3,idle,handshakes,rest,redis,cluster-s2
//   --variants a,b     servers: ceiling,socketio,socketio-uws,roomcast,roomcast-node,roomcast-sqlite,roomcast-pg
//   --with-node        also run roomcast on its node:http + ws transport
//   --no-build         never run `npm run build`
//   --out PATH         results JSON path (default bench/results/<date>.json; quick: bench/results/tmp/)
//   --no-readme        do not update the table in bench/README.md
//   --profile          run roomcast under --cpu-prof; each result carries the hot functions of its
//                      measurement window (profiles kept in bench/results/tmp/profiles)
import { execFileSync, execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLIENT_CPU, runFanout, runHandshakes, runIdle, runRedisPair, runRest, SERVER_CPU, setProfileDir, settings } from './lib/scenarios.mjs';
import { setRoomcastMain, VARIANTS } from './lib/servers.mjs';
import { renderReport, summarize } from './lib/report.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const args = parseArgs(process.argv.slice(2));
const quick = args.quick || process.env.BENCH_QUICK === '1';
const reps = Number(args.reps ?? (quick ? 1 : 3));
const S = settings(quick);

pinSelf();
if (args.profile) setProfileDir(path.join(ROOT, 'bench/results/tmp/profiles'));
const build = ensureBuild();
snapshotDist();
const redisSupport = detectRedis();
const fanoutVariants = pickVariants(quick ? ['ceiling', 'socketio', 'roomcast'] : ['ceiling', 'socketio', 'socketio-uws', 'roomcast']);
const closedLoopVariants = quick ? fanoutVariants : pickVariants(['ceiling', 'ceiling-615', 'socketio', 'socketio-uws', 'roomcast']);
const threeVariants = pickVariants(['ceiling', 'socketio', 'roomcast']);
// The durable configurations beside the in-memory one (S2 and REST send).
const postgresSupport = await detectPostgres();
const DURABLE = ['roomcast-sqlite', ...(postgresSupport.ok ? ['roomcast-pg'] : [])];
const withDurable = (list) => (list.includes('roomcast') ? [...list, ...pickVariants(args.variants?.includes('roomcast-sqlite-full') ? [...DURABLE, 'roomcast-sqlite-full'] : DURABLE, true)] : list);

const SCENARIOS = [
  {
    id: 's1',
    title: `S1 fan-out, closed loop: 1 room × ${S.s1.sockets} sockets, 1 publisher, window ${S.s1.window}`,
    variants: closedLoopVariants,
    run: (v) => runFanout(v, S.s1, S, { mode: 'closed', window: S.s1.window }),
  },
  {
    id: 's2',
    title: `S2 fan-out, closed loop: ${S.s2.rooms} rooms × ${S.s2.sockets / S.s2.rooms} sockets, 1 publisher per room, window ${S.s2.window} each`,
    variants: withDurable(closedLoopVariants),
    run: (v) => runFanout(v, S.s2, S, { mode: 'closed', window: S.s2.window }),
  },
  {
    id: 's3',
    title: `S3 open loop: ${S.s3.rooms} rooms × ${S.s3.sockets / S.s3.rooms} sockets, ${S.s3.rate} messages/s (${(S.s3.rate * S.s3.sockets) / S.s3.rooms} frames/s)`,
    variants: fanoutVariants,
    run: (v) => runFanout(v, S.s3, S, { mode: 'open', rate: S.s3.rate }),
  },
  {
    id: 'idle',
    title: `Idle: ${S.idle.sockets} connected sockets (${S.idle.rooms} rooms), server memory per connection`,
    variants: threeVariants,
    run: (v) => runIdle(v, S.idle, S),
  },
  {
    id: 'handshakes',
    title: `Handshakes: ${S.handshakes.concurrency} concurrent connect → upgrade → CONNECT → ack → reset loops`,
    variants: threeVariants,
    run: (v) => runHandshakes(v, S.handshakes, S),
  },
  {
    id: 'rest',
    title: `REST send: autocannon, ${S.rest.connections} connections, POST /rooms/:id/message, ${S.rest.members} members listening`,
    variants: withDurable(threeVariants),
    run: (v) => runRest(v, S.rest, S),
  },
  {
    id: 'redis',
    title: `Two roomcast nodes on PostgreSQL + Redis: S1 load, half the sockets on each node (vs one node in S1)`,
    variants: ['roomcast-2nodes'],
    run: () => (clusterSupport().ok ? runRedisPair(S.s1, S) : Promise.reject(new NotRun(clusterSupport().reason))),
  },
  {
    id: 'cluster-s2',
    title: `Two roomcast nodes on PostgreSQL + Redis: S2 load, half of each room's sockets on each node (vs one node in S2)`,
    variants: ['roomcast-2nodes'],
    run: () => (clusterSupport().ok ? runRedisPair(S.s2, S) : Promise.reject(new NotRun(clusterSupport().reason))),
  },
].filter((s) => !args.only || args.only.split(',').includes(s.id));

class NotRun extends Error {}
function clusterSupport() {
  return !redisSupport.ok ? redisSupport : postgresSupport;
}

const started = new Date();
console.log(`roomcast bench: ${quick ? 'quick' : 'full'}, ${reps} repetition(s), server on CPU ${SERVER_CPU}, clients on CPU ${CLIENT_CPU}`);
const runs = [];
for (let rep = 1; rep <= reps; rep++) {
  for (const scenario of SCENARIOS) {
    // Interleave: every repetition runs every variant of a scenario back to back, in a rotated order.
    const order = rotate(scenario.variants, rep - 1);
    for (const variant of order) {
      const t0 = performance.now();
      let metrics;
      let error;
      let notRun;
      try {
        metrics = await scenario.run(variant);
      } catch (err) {
        if (err instanceof NotRun) notRun = err.message;
        else error = String(err?.message ?? err).slice(0, 600);
      }
      const secs = (performance.now() - t0) / 1000;
      runs.push({ scenario: scenario.id, variant, rep, secs, ...(metrics ? { metrics } : {}), ...(error ? { error } : {}), ...(notRun ? { notRun } : {}) });
      console.log(`[${rep}/${reps}] ${scenario.id} ${variant.padEnd(15)} ${secs.toFixed(1).padStart(5)}s  ${notRun ? `not run: ${notRun}` : error ? `ERROR ${error}` : brief(metrics)}`);
      for (const key of ['profile', 'profileA', 'profileB']) if (metrics?.[key]) printProfile(metrics[key], key);
    }
  }
}
const finished = new Date();

const machine = machineInfo();
const summary = summarize(SCENARIOS, runs);
const results = {
  startedAt: started.toISOString(),
  finishedAt: finished.toISOString(),
  durationS: (finished - started) / 1000,
  quick,
  repetitions: reps,
  machine,
  build,
  redis: redisSupport,
  postgres: postgresSupport,
  settings: S,
  scenarios: SCENARIOS.map((s) => ({ id: s.id, title: s.title, variants: s.variants })),
  variants: Object.fromEntries(Object.entries(VARIANTS).map(([k, v]) => [k, v.label])),
  summary,
  runs,
};
const report = renderReport(results);
const date = started.toISOString().slice(0, 10);
const outPath = path.resolve(args.out ?? path.join(ROOT, 'bench/results', quick || args.only ? 'tmp' : '', `${date}.json`));
mkdirSync(path.dirname(outPath), { recursive: true });
writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(outPath.replace(/\.json$/, '.md'), report);
console.log(`\n${report}`);
console.log(`results: ${path.relative(process.cwd(), outPath)} (+ .md)`);
if (!quick && !args.only && !args['no-readme']) updateReadme(report);

// ---------------------------------------------------------------------------------------------

function parseArgs(list) {
  const out = {};
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    if (!a.startsWith('--')) continue;
    const key = a.slice(2);
    if (['quick', 'with-node', 'no-build', 'no-readme', 'profile'].includes(key)) out[key] = true;
    else out[key] = list[++i];
  }
  return out;
}

function pickVariants(defaults, extraOnly = false) {
  let list = args.variants ? args.variants.split(',').filter((v) => defaults.includes(v) || (!extraOnly && ['roomcast-node', 'socketio-uws', 'ceiling-615'].includes(v))) : defaults;
  if (!extraOnly && args['with-node'] && !list.includes('roomcast-node')) list = [...list, 'roomcast-node'];
  return list;
}

/** The durable PostgreSQL variants need a server (BENCH_DATABASE_URL, default the machine's). */
async function detectPostgres() {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `no PostgreSQL at BENCH_DATABASE_URL (${err.message})` };
  } finally {
    await client.end().catch(() => {});
  }
}

function rotate(list, k) {
  const n = list.length;
  return list.map((_, i) => list[(i + k) % n]);
}

function brief(m) {
  const f = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '-' : Number(x).toFixed(d));
  if ('framesPerSec' in m && 'deliveredShare' in m) return `${f(m.framesPerSec)} frames/s, ${f(m.cpuUsPerFrame, 3)} µs CPU/frame, p50 ${f(m.p50Ms, 2)} ms, p99 ${f(m.p99Ms, 2)} ms, delivered ${f(m.deliveredShare * 100, 1)}%, skipped ${m.sendsSkipped}`;
  if ('framesPerSec' in m) return `${f(m.framesPerSec)} frames/s, server ${f(m.serverUtil * 100)}% CPU, client ${f(m.clientUtil * 100)}%, ${f(m.cpuUsPerFrame, 3)} µs/frame, p50 ${f(m.p50Ms, 1)} ms, p99 ${f(m.p99Ms, 1)} ms`;
  if ('bytesPerConn' in m) return `${f(m.bytesPerConn)} B/conn (heap ${f(m.heapBytesPerConn)} B), ${m.sockets} sockets, RSS ${f(m.rssBeforeMB, 1)} → ${f(m.rssAfterMB, 1)} MB`;
  if ('handshakesPerSec' in m) return `${f(m.handshakesPerSec)} handshakes/s, ${f(m.cpuUsPerHandshake, 1)} µs CPU each, server ${f(m.serverUtil * 100)}%, p50 ${f(m.p50Ms, 2)} ms, failed ${m.failed}`;
  if ('requestsPerSec' in m) return `${f(m.requestsPerSec)} req/s, ${f(m.cpuUsPerRequest, 1)} µs CPU each, server ${f(m.serverUtil * 100)}%, p50 ${f(m.p50Ms, 1)} ms, p99 ${f(m.p99Ms, 1)} ms`;
  return JSON.stringify(m);
}

function printProfile(p, key) {
  console.log(`    ${key} (${p.busyMs.toFixed(0)} ms busy of ${p.windowMs.toFixed(0)} ms measured) ${path.relative(process.cwd(), p.file)}`);
  console.log('    self:      ' + p.self.slice(0, 10).map((x) => `${x.pctOfBusy}% ${x.fn}`).join('\n               '));
  console.log('    inclusive: ' + p.inclusive.slice(0, 14).map((x) => `${x.pctOfBusy}% ${x.fn}`).join('\n               '));
}

function pinSelf() {
  try {
    execFileSync('taskset', ['-pc', String(CLIENT_CPU), String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.warn('bench: taskset failed; the orchestrator is not pinned');
  }
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/; a failed build with a dist/ left is reported, not fatal. */
function ensureBuild() {
  const main = path.join(ROOT, 'dist/main.js');
  const stale = !existsSync(main) || newestMtime(path.join(ROOT, 'src')) > statSync(main).mtimeMs;
  const info = { stale, built: false };
  if (stale && !args['no-build']) {
    console.log('bench: dist/ is missing or older than src/: npm run build');
    try {
      execSync('npm run build --silent', { cwd: ROOT, stdio: 'inherit' });
      info.built = true;
    } catch {
      if (!existsSync(main)) throw new Error('npm run build failed and there is no dist/ to run');
      info.buildFailed = true;
      console.warn('bench: npm run build failed; measuring the existing dist/');
    }
  }
  try {
    info.commit = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim();
    info.dirtySrc = execSync('git status --porcelain -- src', { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
  } catch {
    // not a git checkout
  }
  return info;
}

/**
 * Runs roomcast from a copy of dist/ taken now: other people may rebuild dist/ while the suite
 * runs, and every variant of every repetition must measure the same build.
 */
function snapshotDist() {
  if (process.env.BENCH_ROOMCAST_MAIN) return;
  const dir = path.join(ROOT, 'bench/results/tmp/dist-snapshot');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  cpSync(path.join(ROOT, 'dist'), dir, { recursive: true });
  setRoomcastMain(path.join(dir, 'main.js'));
}

function detectRedis() {
  const text = (p) => (existsSync(path.join(ROOT, p)) ? readFileSync(path.join(ROOT, p), 'utf8') : '');
  if (!text('src/config.ts').includes('ROOMCAST_REDIS_URL') || !text('dist/config.js').includes('ROOMCAST_REDIS_URL')) {
    return { ok: false, reason: 'Redis support absent (no ROOMCAST_REDIS_URL in src/config.ts)' };
  }
  if (!existsSync('/usr/bin/redis-server')) return { ok: false, reason: 'no /usr/bin/redis-server' };
  return { ok: true };
}

function machineInfo() {
  const cpus = os.cpus();
  let kernel = os.release();
  let virt = '';
  try {
    virt = /Hypervisor vendor:\s*(.+)/.exec(execSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? '';
  } catch {
    // unknown
  }
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel,
    virtualization: virt || undefined,
    node: process.version,
    loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
    fdLimit: (() => {
      try {
        return Number(execSync('bash -c "ulimit -n"', { encoding: 'utf8' }).trim());
      } catch {
        return undefined;
      }
    })(),
  };
}

function updateReadme(report) {
  const file = path.join(ROOT, 'bench/README.md');
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return;
  writeFileSync(file, `${text.slice(0, a + start.length)}\n${report}\n${text.slice(b)}`);
  console.log('bench/README.md: results table updated');
}
