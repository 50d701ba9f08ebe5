// The REST send's JavaScript path on its own, in one process: the HTTP service (routing,
// credentials, body, validation, the send, the view, the response envelope) and the store
// (SQLite file, group commit), driven with a fixed number of requests per event-loop turn so
// that every run batches the same way. No sockets, no uWS, no load client: what remains of
// the bench's REST figure is the transport (parsing, copies, system calls) and the delivery.
//
//   node bench/rest-path.mjs [--builds dist,dist-other] [--batch 16] [--requests 20000] [--reps 3] [--cpu-prof] [--heap-sample]
//   node bench/rest-path.mjs --database-url postgres://postgres@127.0.0.1:5432/postgres …
//
// With --database-url the data is in PostgreSQL (a fresh schema per run, dropped after), and
// the figure is this process's CPU only, not the database server's.
//
// Builds alternate within each repetition, each on a new server and file; the figure is the
// process CPU time per request over the run, median and range.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { dropSchema, spread } from './lib/in-process.mjs';
import { provisionRoomcast } from './lib/provision.mjs';
import { OPERATOR_SECRET } from './lib/servers.mjs';

const { values } = parseArgs({
  options: {
    builds: { type: 'string', default: 'dist' },
    batch: { type: 'string', default: '16' },
    requests: { type: 'string', default: '20000' },
    reps: { type: 'string', default: '3' },
    'cpu-prof': { type: 'boolean', default: false },
    'heap-sample': { type: 'boolean', default: false },
    'database-url': { type: 'string' },
  },
});
const builds = values.builds.split(',');
const batch = Number(values.batch);
const total = Number(values.requests);
const reps = Number(values.reps);
const root = path.resolve(import.meta.dirname, '..');

async function loadBuild(dir) {
  const at = (p) => pathToFileURL(path.resolve(root, dir, p)).href;
  return {
    ...(await import(at('server.js'))),
    ...(await import(at('config.js'))),
    ...(await import(at('observability/logger.js'))),
    ...(await import(at('http/app.js'))),
  };
}

async function runOnce(build, label, rep) {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-rest-path-'));
  const url = values['database-url'];
  const schema = `rest_path_${process.pid}_${rep}_${label}`.replace(/[^A-Za-z0-9_]/g, '_');
  const config = build.loadConfig({}, {
    port: 0, host: '127.0.0.1', operatorSecret: OPERATOR_SECRET, logLevel: 'silent', demo: false,
    databasePath: path.join(dir, 'roomcast.db'), filesDir: path.join(dir, 'files'),
    restRequestsPerMinutePerApiKey: 100_000_000, restRequestsPerMinutePerUser: 100_000_000, messagesPerMinutePerUser: 10_000_000,
    ...(url ? { databaseUrl: url, databaseSchema: schema } : {}),
  });
  const log = build.createLogger('silent');
  const server = await build.startServer(config, log);
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const provisioned = await provisionRoomcast(base, { users: 10, rooms: [{ id: 'r0', members: [...Array(10).keys()] }] });
    const service = build.createHttpService(server.core, config, log, undefined, server.lifecycle);
    // The body the bench's REST scenario posts; headers as the uWS adapter hands them over.
    const body = Buffer.from(JSON.stringify({ room: 'r0', message: 'hello from autocannon' }));
    const request = () => ({
      method: 'POST',
      path: '/rooms/r0/message',
      query: new URLSearchParams(),
      headers: {
        host: `127.0.0.1:${server.port}`,
        'content-type': 'application/json',
        'content-length': String(body.length),
        'im-client-key': provisioned.app.clientKey,
        'im-authorization': provisioned.tokens[0],
      },
      body,
      remoteAddress: '127.0.0.1',
    });
    const round = async () => {
      const answers = await Promise.all(Array.from({ length: batch }, () => service.handle(request())));
      for (const a of answers) if (a.status !== 200) throw new Error(`send answered ${a.status}: ${a.body}`);
    };
    for (let i = 0; i < 3000; i += batch) await round();
    let session;
    if (values['cpu-prof'] || values['heap-sample']) {
      session = new Session();
      session.connect();
    }
    if (values['cpu-prof']) {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    if (values['heap-sample']) await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < total; i += batch) await round();
    const cpu = process.cpuUsage(cpu0);
    if (values['cpu-prof']) {
      const { profile } = await session.post('Profiler.stop');
      const file = path.join(root, 'bench/results/tmp', `rest-path-${label}-${rep}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      console.error(`profile: ${file}`);
    }
    if (values['heap-sample']) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      console.error(`allocated per request, by function (sampled), ${label}:`);
      for (const [fn, bytes] of allocationsByFunction(profile).slice(0, 25)) console.error(`  ${(bytes / total).toFixed(0).padStart(6)} B  ${fn}`);
    }
    return (cpu.user + cpu.system) / total;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    if (url) await dropSchema(url, schema);
  }
}

/** Bytes allocated per function (self), largest first, from a sampling heap profile. */
function allocationsByFunction(profile) {
  const totals = new Map();
  const walk = (node) => {
    const cf = node.callFrame;
    const name = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
    const self = node.selfSize;
    if (self > 0) totals.set(name, (totals.get(name) ?? 0) + self);
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  return [...totals].sort((a, b) => b[1] - a[1]);
}

const loaded = await Promise.all(builds.map(loadBuild));
const results = builds.map(() => []);
for (let rep = 0; rep < reps; rep++) {
  for (const [b, build] of loaded.entries()) results[b].push(await runOnce(build, builds[b].replaceAll('/', '_'), rep));
}
console.log(`REST send path in-process (${values['database-url'] ? 'PostgreSQL, this process only' : 'SQLite file'}): CPU µs per request, ${batch} per turn, ${total} requests, median (min–max) of ${reps}`);
for (const [b, xs] of results.entries()) {
  console.log(`${builds[b]}\t${spread(xs)}`);
}
process.exit(0);
