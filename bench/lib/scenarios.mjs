// The scenarios. Each run starts a fresh server (pinned to the server core), provisions it,
// opens its sockets from client processes (pinned to the client core), warms up, measures,
// and stops everything. Server CPU comes from /proc/<pid>/stat, memory from VmRSS after a GC.
import { ClientGroup } from './clients.mjs';
import { since, snapshot } from './procstat.mjs';
import { provisionRoomcast } from './provision.mjs';
import { nowUs } from './wire.mjs';
import { clusterBackends, ServerProc, sleep, VARIANTS } from './servers.mjs';
import { summarizeProfile } from './profile.mjs';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const SERVER_CPU = 1;
export const CLIENT_CPU = 0;

/** Durations and sizes; --quick shrinks them for a smoke run. */
export function settings(quick) {
  return {
    warmupMs: quick ? 500 : 2000, // roomcast's message path needs ~1–2 s of load to be JIT-optimised
    measureMs: quick ? 1500 : 3000,
    jitWarmMs: quick ? 1000 : 1500,
    s1: { sockets: 1000, rooms: 1, window: 32 },
    s2: { sockets: 1000, rooms: 100, window: 10 },
    s3: { sockets: 1000, rooms: 10, rate: 300 },
    idle: { sockets: quick ? 2000 : 10_000, users: quick ? 200 : 1000, rooms: quick ? 20 : 100 },
    // 50,000 idle authenticated sockets on one node (3 client processes: ~20 k descriptors each),
    // and the heartbeat's CPU over `heartbeatWindowMs` at a `pingIntervalMs` ping interval.
    // The server needs a descriptor per socket: where the hard limit (`ulimit -Hn`, which an
    // unprivileged process cannot raise) is below 50,000, as many as it allows are measured.
    idle50k: idleAtScale(quick),
    handshakes: { users: 200, concurrency: 32 },
    rest: { members: 10, connections: 32, durationSec: quick ? 2 : 3 },
    pad: Number(process.env.BENCH_PAD ?? 16), // filler bytes after the timestamp in each chat message
    samplePermille: 20, // latency sampled on 2% of the connections (and at least one per room)
  };
}

function idleAtScale(quick) {
  const limit = hardFdLimit();
  const sockets = quick ? 6000 : Math.min(50_000, Math.floor((limit - 1000) / 1000) * 1000);
  return { sockets, users: sockets / 10, rooms: sockets / 100, minProcs: 3, pingIntervalMs: 5000, heartbeatWindowMs: quick ? 5000 : 10_000, serverFdLimit: limit };
}

/** The hard descriptor limit this process (and the servers it spawns) cannot go beyond. */
function hardFdLimit() {
  try {
    const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : 1_048_576;
  } catch {
    return 1_048_576;
  }
}

/**
 * Rooms of equal size; socket i is user i (roomcast) and member of room floor(i / size).
 * The first socket of each room publishes.
 */
function roomLayout(sockets, rooms, samplePermille) {
  const size = sockets / rooms;
  const every = Math.max(1, Math.round(1000 / samplePermille));
  return Array.from({ length: sockets }, (_, i) => {
    const r = Math.floor(i / size);
    const k = i % size;
    return { user: i, room: `r${r}`, pub: k === 0 ? r + 1 : 0, sample: i % every === 1 || k === 1 };
  });
}

/** With `profileDir`, roomcast runs under --cpu-prof and the result carries a profile summary. */
let profileDir;
export function setProfileDir(dir) {
  profileDir = dir;
}

export async function withServer(variant, fn, opts = {}) {
  const profiling = profileDir && VARIANTS[variant].kind === 'roomcast';
  const dir = profiling ? path.join(profileDir, `${variant}-${Date.now()}`) : undefined;
  const server = new ServerProc(variant, { cpu: SERVER_CPU, extraEnv: opts.extraEnv, nodeArgs: dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [] });
  await server.start();
  let result;
  try {
    result = await fn(server);
  } finally {
    await server.stop();
  }
  if (dir && server.window) {
    const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) : undefined;
    if (file) result.profile = { file: path.join(dir, file), ...summarizeProfile(path.join(dir, file), server.window.fromUs, server.window.toUs) };
  }
  return result;
}

/** CONNECT packets: IMKIT credentials for roomcast, the room to join for the baselines. */
async function connectPackets(server, layout, { users, roomsOf }) {
  if (server.variant.kind !== 'roomcast') return { connect: (s) => `40${JSON.stringify({ room: s.room })}`, room: (s) => s.room };
  const rooms = roomsOf();
  const p = await provisionRoomcast(server.base, { users, rooms });
  return { connect: (s) => p.connectFor(s.user), room: (s) => s.room, provisioned: p };
}

function clientCpuStart(group) {
  return group.workers.map((w) => snapshot(w.child.pid));
}
function clientUtil(group, starts) {
  return group.workers.reduce((a, w, i) => a + since(starts[i], w.child.pid).util, 0);
}

/** Closed loop (S1, S2) or open loop (S3) room fan-out. */
export async function runFanout(variant, cfg, common, { mode, window, rate }) {
  return withServer(variant, async (server) => {
    const layout = roomLayout(cfg.sockets, cfg.rooms, common.samplePermille);
    const size = cfg.sockets / cfg.rooms;
    const packets = await connectPackets(server, layout, {
      users: cfg.sockets,
      roomsOf: () => Array.from({ length: cfg.rooms }, (_, r) => ({ id: `r${r}`, members: Array.from({ length: size }, (_, k) => r * size + k) })),
    });
    const specs = layout.map((s) => ({ c: packets.connect(s), room: s.room, pub: s.pub, sample: s.sample }));
    return drive(server, specs, { ...common, pad: server.variant.pad ?? common.pad }, { mode, window, rate, fanout: size });
  });
}

async function drive(server, specs, common, { mode, window, rate, fanout }, extraPids = []) {
  const group = ClientGroup.forSockets(specs.length, CLIENT_CPU);
  try {
    const setup = await group.setup('127.0.0.1', server.port, specs);
    if (setup.failed > 0) throw new Error(`${setup.failed}/${specs.length} sockets failed to connect: ${setup.firstError}`);
    if (mode === 'open' && common.jitWarmMs > 0) {
      // Steady state, not start-up: run closed-loop first so every server's message path is
      // JIT-optimised (at a few hundred messages/s V8 would still be interpreting after seconds).
      await group.start({ mode: 'closed', window: 4, pad: common.pad });
      await sleep(common.jitWarmMs);
      await group.start({ mode: 'idle', pad: common.pad });
      await sleep(300); // let the closed-loop backlog drain
    }
    await group.start({ mode, window, rate, pad: common.pad });
    await sleep(common.warmupMs);
    await group.reset();
    const pids = [server.pid, ...extraPids];
    const s0 = pids.map((pid) => snapshot(pid));
    const c0 = clientCpuStart(group);
    const fromUs = nowUs();
    await sleep(common.measureMs);
    server.window = { fromUs, toUs: nowUs() };
    const cpu = pids.map((pid, i) => since(s0[i], pid));
    const cUtil = clientUtil(group, c0);
    const rep = await group.report();
    if (!server.alive()) throw new Error(`server died: ${server.output.trim().slice(-500)}`);
    const secs = rep.elapsedUs / 1e6;
    const cpuUs = cpu.reduce((a, c) => a + c.cpuUs, 0);
    const out = {
      framesPerSec: rep.delivered / secs,
      messagesPerSec: rep.sent / secs,
      cpuUsPerFrame: rep.delivered > 0 ? cpuUs / rep.delivered : null,
      // what the server would deliver using all of its core at this per-frame cost
      framesPerCpuSec: cpuUs > 0 ? (rep.delivered / cpuUs) * 1e6 : null,
      serverUtil: cpu.reduce((a, c) => a + c.util, 0),
      clientUtil: cUtil,
      p50Ms: rep.p50Us === null ? null : rep.p50Us / 1000,
      p99Ms: rep.p99Us === null ? null : rep.p99Us / 1000,
      latencySamples: rep.samples,
      connectMs: setup.setupMs,
    };
    if (mode === 'open') {
      out.sendsSkipped = rep.skipped;
      out.deliveredShare = rep.sent > 0 ? rep.delivered / (rep.sent * fanout) : null;
    }
    if (rep.stalls > 0) out.stalls = rep.stalls;
    if (rep.dropped > 0) throw new Error(`${rep.dropped} sockets dropped by the server during the run`);
    return out;
  } finally {
    await group.stop();
  }
}

/** Idle sockets: server memory per connection (VmRSS after a full GC, before and after). */
export async function runIdle(variant, cfg, common) {
  const extraEnv = cfg.pingIntervalMs ? { ROOMCAST_PING_INTERVAL_MS: String(cfg.pingIntervalMs) } : undefined;
  return withServer(variant, async (server) => {
    const perUser = cfg.sockets / cfg.users;
    const usersPerRoom = cfg.users / cfg.rooms;
    // socket i: user floor(i / perUser); users are in rooms of usersPerRoom
    const layout = Array.from({ length: cfg.sockets }, (_, i) => {
      const user = Math.floor(i / perUser);
      return { user, room: `r${Math.floor(user / usersPerRoom)}` };
    });
    const packets = await connectPackets(server, layout, {
      users: cfg.users,
      roomsOf: () => Array.from({ length: cfg.rooms }, (_, r) => ({ id: `r${r}`, members: Array.from({ length: usersPerRoom }, (_, k) => r * usersPerRoom + k) })),
    });
    const specs = layout.map((s) => ({ c: packets.connect(s), room: s.room, pub: 0, sample: false }));
    await sleep(300);
    const before = await server.gcAndMeasure();
    const group = ClientGroup.forSockets(specs.length, CLIENT_CPU, cfg.minProcs ?? 1);
    try {
      const t0 = snapshot(server.pid);
      const setup = await group.setup('127.0.0.1', server.port, specs, 128);
      const setupCpu = since(t0, server.pid);
      if (setup.failed > 0) throw new Error(`${setup.failed}/${specs.length} sockets failed to connect: ${setup.firstError}`);
      await sleep(1000);
      const after = await server.gcAndMeasure();
      const n = setup.connected;
      const heartbeat = cfg.heartbeatWindowMs && server.variant.kind === 'roomcast' ? await heartbeatCost(server, group, n, cfg) : {};
      return {
        ...heartbeat,
        bytesPerConn: (after.rss - before.rss) / n,
        heapBytesPerConn: (after.heapUsed - before.heapUsed) / n,
        rssBeforeMB: before.rss / 2 ** 20,
        rssAfterMB: after.rss / 2 ** 20,
        sockets: n,
        connectPerSec: n / (setup.setupMs / 1000),
        cpuUsPerConnect: setupCpu.cpuUs / n,
      };
    } finally {
      await group.stop();
    }
  });
}

/**
 * The heartbeat's cost with every socket idle: server CPU over a window of several ping
 * intervals (Engine.IO ping `2`, answered `3` by the clients), per socket and ping, and as a
 * share of one core at the default 25 s interval. Includes whatever else an idle server does
 * (timers, metering), which is the point: it is what 50,000 idle users cost.
 */
async function heartbeatCost(server, group, sockets, cfg) {
  await group.start({ mode: 'idle' });
  const s0 = snapshot(server.pid);
  await sleep(cfg.heartbeatWindowMs);
  const cpu = since(s0, server.pid);
  const rep = await group.report();
  if (rep.dropped > 0) throw new Error(`${rep.dropped} idle sockets dropped during the heartbeat window`);
  const pings = (sockets * cfg.heartbeatWindowMs) / cfg.pingIntervalMs;
  const perPing = cpu.cpuUs / pings;
  return {
    cpuUsPerHeartbeat: perPing,
    heartbeatUtil: cpu.util,
    // at the default 25 s interval: sockets × perPing every 25 s
    heartbeatUtilDefault: (sockets * perPing) / 25e6,
  };
}

/** Handshakes per second: connect, upgrade, Engine.IO open, Socket.IO CONNECT (+ auth), ack. */
export async function runHandshakes(variant, cfg, common) {
  return withServer(variant, async (server) => {
    let connects;
    if (server.variant.kind === 'roomcast') {
      const p = await provisionRoomcast(server.base, { users: cfg.users, rooms: [] });
      connects = Array.from({ length: cfg.users }, (_, i) => p.connectFor(i));
    } else {
      connects = ['40'];
    }
    const group = new ClientGroup(1, CLIENT_CPU);
    try {
      await group.handshakes({ host: '127.0.0.1', port: server.port, connects, concurrency: cfg.concurrency });
      await sleep(common.warmupMs);
      await group.reset();
      const s0 = snapshot(server.pid);
      const c0 = clientCpuStart(group);
      const fromUs = nowUs();
      await sleep(common.measureMs);
      server.window = { fromUs, toUs: nowUs() };
      const cpu = since(s0, server.pid);
      const cUtil = clientUtil(group, c0);
      const rep = await group.report();
      if (!server.alive()) throw new Error(`server died: ${server.output.trim().slice(-500)}`);
      if (rep.completed === 0) throw new Error(`no handshake completed: ${rep.firstError}`);
      const secs = rep.elapsedUs / 1e6;
      return {
        handshakesPerSec: rep.completed / secs,
        cpuUsPerHandshake: cpu.cpuUs / rep.completed,
        serverUtil: cpu.util,
        clientUtil: cUtil,
        p50Ms: rep.p50Us / 1000,
        p99Ms: rep.p99Us / 1000,
        failed: rep.failed,
        ...(rep.failed ? { firstError: rep.firstError } : {}),
      };
    } finally {
      await group.stop();
    }
  });
}

/** REST send with autocannon: POST /rooms/:id/message, the room's members listening on sockets. */
export async function runRest(variant, cfg, common) {
  return withServer(variant, async (server) => {
    const layout = Array.from({ length: cfg.members }, (_, i) => ({ user: i, room: 'r0' }));
    const packets = await connectPackets(server, layout, {
      users: cfg.members,
      roomsOf: () => [{ id: 'r0', members: layout.map((s) => s.user) }],
    });
    const specs = layout.map((s) => ({ c: packets.connect(s), room: s.room, pub: 0, sample: false }));
    const group = new ClientGroup(1, CLIENT_CPU);
    try {
      const setup = await group.setup('127.0.0.1', server.port, specs);
      if (setup.failed > 0) throw new Error(`sockets failed: ${setup.firstError}`);
      const headers = { 'content-type': 'application/json' };
      if (packets.provisioned) {
        headers['IM-CLIENT-KEY'] = packets.provisioned.app.clientKey;
        headers['IM-Authorization'] = packets.provisioned.tokens[0];
      }
      const body = JSON.stringify({ room: 'r0', message: 'hello from autocannon' });
      await group.reset();
      const s0 = snapshot(server.pid);
      const c0 = clientCpuStart(group);
      const fromUs = nowUs();
      const r = await group.rest({ url: `${server.base}/rooms/r0/message`, headers, body, connections: cfg.connections, durationSec: cfg.durationSec });
      server.window = { fromUs, toUs: nowUs() };
      const cpu = since(s0, server.pid);
      const cUtil = clientUtil(group, c0);
      const rep = await group.report();
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`REST: ${r.non2xx} non-2xx, ${r.errors} errors`);
      return {
        requestsPerSec: r.requests / r.durationS,
        cpuUsPerRequest: cpu.cpuUs / r.requests,
        serverUtil: cpu.util,
        clientUtil: cUtil,
        p50Ms: r.latencyP50Ms,
        p99Ms: r.latencyP99Ms,
        deliveredPerRequest: rep.delivered / r.requests,
      };
    } finally {
      await group.stop();
    }
  });
}

/**
 * Two roomcast nodes in cluster mode — data in PostgreSQL (the machine's server, a schema of
 * the run's own; not pinned), bus and presence through one Redis — both pinned to the server
 * core with Redis: the given load (S1 or S2) with half of each room's sockets on each node;
 * the publishers are on node A.
 */
export async function runRedisPair(cfg, common) {
  const backends = await clusterBackends(SERVER_CPU);
  const extraEnv = backends.env;
  const profDir = (name) => (profileDir ? path.join(profileDir, `redis-${name}-${Date.now()}`) : undefined);
  const dirA = profDir('a');
  const dirB = profDir('b');
  const profArgs = (dir) => (dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);
  const a = new ServerProc('roomcast', { cpu: SERVER_CPU, extraEnv, nodeArgs: profArgs(dirA) });
  const b = new ServerProc('roomcast', { cpu: SERVER_CPU, extraEnv, nodeArgs: profArgs(dirB) });
  let result;
  try {
    await backends.ready();
    await a.start();
    await b.start();
    const size = cfg.sockets / cfg.rooms;
    const p = await provisionRoomcast(a.base, {
      users: cfg.sockets,
      rooms: Array.from({ length: cfg.rooms }, (_, r) => ({ id: `r${r}`, members: Array.from({ length: size }, (_, k) => r * size + k) })),
    });
    const layout = roomLayout(cfg.sockets, cfg.rooms, common.samplePermille);
    const specs = layout.map((s) => ({ c: p.connectFor(s.user), room: s.room, pub: s.pub, sample: s.sample }));
    // even sockets (the publishers among them) on node A, odd ones on node B
    const specsA = specs.filter((_, i) => i % 2 === 0);
    const specsB = specs.filter((_, i) => i % 2 === 1);
    const groupB = new ClientGroup(1, CLIENT_CPU);
    try {
      const setupB = await groupB.setup('127.0.0.1', b.port, specsB);
      if (setupB.failed > 0) throw new Error(`node B: ${setupB.failed} sockets failed: ${setupB.firstError}`);
      await groupB.start({ mode: 'idle' });
      result = await driveWithSecond(a, specsA, common, cfg, groupB, [b.pid, backends.pid]);
    } finally {
      await groupB.stop();
    }
  } finally {
    await a.stop();
    await b.stop();
    await backends.stop();
  }
  for (const [node, dir] of [['A', dirA], ['B', dirB]]) {
    const file = dir && existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) : undefined;
    if (file && a.window) result[`profile${node}`] = { file: path.join(dir, file), ...summarizeProfile(path.join(dir, file), a.window.fromUs, a.window.toUs) };
  }
  return result;
}

/** drive() on node A while node B's sockets (another client group) are counted too. */
async function driveWithSecond(a, specsA, common, cfg, groupB, extraPids) {
  const group = ClientGroup.forSockets(specsA.length, CLIENT_CPU);
  try {
    const setup = await group.setup('127.0.0.1', a.port, specsA);
    if (setup.failed > 0) throw new Error(`node A: ${setup.failed} sockets failed: ${setup.firstError}`);
    await group.start({ mode: 'closed', window: cfg.window, pad: common.pad });
    await sleep(common.warmupMs);
    await Promise.all([group.reset(), groupB.reset()]);
    const pids = [a.pid, ...extraPids];
    const s0 = pids.map((pid) => snapshot(pid));
    const fromUs = nowUs();
    await sleep(common.measureMs);
    a.window = { fromUs, toUs: nowUs() };
    const cpu = pids.map((pid, i) => since(s0[i], pid));
    const cpuByProcess = cpu.map((c) => c.util);
    const {
      all: both,
      each: [ra, rb],
    } = await ClientGroup.reportAll([group, groupB]);
    const secs = ra.elapsedUs / 1e6;
    const delivered = both.delivered;
    const cpuUs = cpu.reduce((x, c) => x + c.cpuUs, 0);
    if (rb.delivered === 0) throw new Error('node B delivered nothing: no cross-node fan-out');
    return {
      framesPerSec: delivered / secs,
      framesOnB: rb.delivered / delivered,
      utilNodeA: cpuByProcess[0],
      utilNodeB: cpuByProcess[1],
      utilRedis: cpuByProcess[2],
      cpuUsPerFrame: cpuUs / delivered,
      serverUtil: cpu.reduce((x, c) => x + c.util, 0),
      p50Ms: both.p50Us === null ? null : both.p50Us / 1000,
      p99Ms: both.p99Us === null ? null : both.p99Us / 1000,
    };
  } finally {
    await group.stop();
  }
}

