// The realistic mix (issue 18): thousands of users, each with one socket, in direct rooms, small
// groups and a few large rooms; open-loop sends split between REST and socket with the side
// traffic around each message (README: Scenarios, mix, for the proportions and their sources);
// steady reconnect churn. The message rate is raised step by step; the result is the highest
// rate sustained with p99 delivery latency ≤ 50 ms, on the embedded default (one node, SQLite
// file) or on two nodes with PostgreSQL + Redis.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { since, snapshot } from './procstat.mjs';
import { provisionRoomcast } from './provision.mjs';
import { clusterBackends, ServerProc, sleep } from './servers.mjs';

const require = createRequire(import.meta.url);
const hdr = require('hdr-histogram-js');
const WORKER = fileURLToPath(new URL('./mix-worker.mjs', import.meta.url));
const P99_LIMIT_MS = 50;

/** Sizes and proportions; `quick` shrinks the population and the steps. */
export function mixSettings(quick) {
  return {
    users: quick ? 400 : 2000,
    directPerUser: 2, // direct rooms opened per user (each user is in ~4: its own and its partners')
    groupSize: 8,
    groupsPerUser: 2, // each user is in ~2 small groups
    largeRooms: 2,
    largeShare: 0.25, // a large room holds this share of all users
    mix: {
      // where messages go: most chat is one-to-one, then small groups, a little in large rooms
      roomShare: { direct: 0.6, group: 0.3, large: 0.1 },
      restShare: 0.5, // the Vue SDK sends over REST; socket-sending clients the rest
      typingPerMessage: 0.5,
      lastReadPerMessage: 0.5,
      historyPerMessage: 0.05,
      roomListPerMessage: 0.02,
      churnPerSec: 0.002, // 0.2% of the sockets reconnect every second
    },
    startRate: 50,
    factor: 1.5,
    maxSteps: quick ? 5 : 10,
    settleMs: quick ? 1000 : 1500,
    stepMs: quick ? 2000 : 3000,
  };
}

function layout(cfg) {
  const n = cfg.users;
  const rooms = [];
  const strides = [1, 7, 31, 97].slice(0, cfg.directPerUser);
  for (let i = 0; i < n; i++) for (const k of strides) rooms.push({ id: `d${i}_${k}`, kind: 'direct', members: [i, (i + k) % n] });
  const groups = Math.round((n * cfg.groupsPerUser) / cfg.groupSize);
  for (let g = 0; g < groups; g++) {
    // members spread over the population so that groups overlap direct partners rarely
    rooms.push({ id: `g${g}`, kind: 'group', members: Array.from({ length: cfg.groupSize }, (_, k) => (g * 13 + k * Math.floor(n / cfg.groupSize)) % n).filter((v, idx, a) => a.indexOf(v) === idx) });
  }
  const largeSize = Math.round(n * cfg.largeShare);
  for (let l = 0; l < cfg.largeRooms; l++) rooms.push({ id: `l${l}`, kind: 'large', members: Array.from({ length: largeSize }, (_, k) => (l * largeSize + k) % n) });
  return rooms;
}

class MixClient {
  constructor(cpu) {
    this.child = fork(WORKER, [], {
      execPath: 'bash',
      execArgv: ['-c', `ulimit -n 65536 2>/dev/null || true; exec nice -n -20 taskset -c ${cpu} "$@"`, 'bench', process.execPath],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.waiters = new Map();
    this.child.on('message', (msg) => {
      if (msg.cmd === 'error') return console.error(`[mix client] ${msg.error}`);
      this.waiters.get(msg.cmd)?.shift()?.(msg);
    });
    this.exited = new Promise((r) => this.child.on('exit', r));
  }

  request(msg, answer, timeoutMs = 180_000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`mix client: no '${answer}' after '${msg.cmd}'`)), timeoutMs);
      if (!this.waiters.has(answer)) this.waiters.set(answer, []);
      this.waiters.get(answer).push((m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.child.send(msg);
    });
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    await this.request({ cmd: 'stop' }, 'stopped', 5000).catch(() => {});
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Provisions through node A, opens every user's socket (even users on A, odd on B) and ramps the rate. */
async function rampOn(nodes, serverPids, cfg, common, clientCpu) {
  const rooms = layout(cfg);
  const p = await provisionRoomcast(nodes[0].base, { users: cfg.users, rooms: rooms.map((r) => ({ id: r.id, members: r.members })) });
  const users = Array.from({ length: cfg.users }, (_, i) => ({ i, node: i % nodes.length, connect: p.connectFor(i), token: p.tokens[i], sample: i % 5 === 1 }));
  const client = new MixClient(clientCpu);
  try {
    const ready = await client.request({ cmd: 'setup', nodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), users, rooms, clientKey: p.app.clientKey, mix: cfg.mix }, 'ready');
    if (ready.failed > 0) throw new Error(`${ready.failed}/${cfg.users} sockets failed: ${ready.firstError}`);
    // JIT warm-up at the first rate, not measured
    await client.request({ cmd: 'rate', rate: cfg.startRate, pad: common.pad }, 'rate-set');
    await sleep(cfg.settleMs);
    const steps = [];
    let rate = cfg.startRate;
    for (let k = 0; k < cfg.maxSteps; k++) {
      await client.request({ cmd: 'rate', rate, pad: common.pad }, 'rate-set');
      await sleep(cfg.settleMs);
      await client.request({ cmd: 'rate', rate, pad: common.pad }, 'rate-set'); // zero the counters
      await Promise.all(nodes.map(eventLoopLag)); // zeroes each node's lag histogram
      const s0 = serverPids.map((pid) => snapshot(pid));
      const c0 = snapshot(client.child.pid);
      await sleep(cfg.stepMs);
      const cpu = serverPids.map((pid, i) => since(s0[i], pid));
      // The load clients share one core: a step they cannot keep up with says nothing of the server.
      const clientUtil = since(c0, client.child.pid).util;
      // The worst event-loop stall on any node during the step: a p99 over the limit with a
      // small stall is the network or the client, a large one the server's own.
      const lag = await Promise.all(nodes.map(eventLoopLag));
      const lagMaxMs = Math.max(...lag.map((l) => l.maxMs));
      const r = await client.request({ cmd: 'report' }, 'report');
      const h = hdr.decodeFromCompressedBase64(r.hist);
      const secs = r.elapsedUs / 1e6;
      const step = {
        targetRate: rate,
        messagesPerSec: r.sent / secs,
        restSendsPerSec: r.sentRest / secs,
        socketSendsPerSec: r.sentSocket / secs,
        httpPerSec: r.http / secs,
        eventsDeliveredPerSec: r.delivered / secs,
        p50Ms: h.totalCount ? h.getValueAtPercentile(50) / 1000 : null,
        p99Ms: h.totalCount ? h.getValueAtPercentile(99) / 1000 : null,
        samples: h.totalCount,
        skipped: r.skipped,
        httpErrors: r.httpErrors,
        reconnects: r.reconnects,
        reconnectFailed: r.reconnectFailed,
        serverUtil: cpu.reduce((a, x) => a + x.util, 0),
        clientUtil,
        lagMaxMs,
        cpuUsPerMessage: r.sent > 0 ? cpu.reduce((a, x) => a + x.cpuUs, 0) / r.sent : null,
      };
      step.sustained = step.p99Ms !== null && step.p99Ms <= P99_LIMIT_MS && r.skipped <= 0.01 * Math.max(1, r.sent) && r.httpErrors === 0 && step.messagesPerSec >= 0.97 * rate;
      steps.push(step);
      console.log(`      mix ${rate.toFixed(0)} msg/s: ${step.messagesPerSec.toFixed(0)} sent, p50 ${step.p50Ms?.toFixed(1)} ms, p99 ${step.p99Ms?.toFixed(1)} ms (${step.samples} samples), server ${(step.serverUtil * 100).toFixed(0)}%, load client ${(clientUtil * 100).toFixed(0)}%, longest server stall ${lagMaxMs.toFixed(0)} ms, ${step.cpuUsPerMessage?.toFixed(0)} µs CPU/msg, skipped ${r.skipped}, http errors ${r.httpErrors}${step.sustained ? '' : '  (not sustained)'}`);
      if (!step.sustained) break;
      rate *= cfg.factor;
    }
    const best = steps.filter((s) => s.sustained).at(-1);
    return {
      sustainedMessagesPerSec: best ? best.messagesPerSec : 0,
      p99Ms: best?.p99Ms ?? null,
      p50Ms: best?.p50Ms ?? null,
      serverUtil: best?.serverUtil ?? null,
      clientUtil: best?.clientUtil ?? null,
      cpuUsPerMessage: best?.cpuUsPerMessage ?? null,
      eventsDeliveredPerSec: best?.eventsDeliveredPerSec ?? null,
      httpPerSec: best?.httpPerSec ?? null,
      users: cfg.users,
      rooms: rooms.length,
      steps,
    };
  } finally {
    await client.stop();
  }
}

/** The node's event-loop delay since the last read (prom-client resets it on every scrape of /metrics). */
async function eventLoopLag(node) {
  const text = await (await fetch(`${node.base}/metrics`)).text();
  const max = /^roomcast_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
  return { maxMs: max ? Number(max[1]) * 1000 : NaN };
}

/** The embedded default: one node, SQLite file. */
export async function runMix(variant, cfg, common, { SERVER_CPU, CLIENT_CPU }) {
  const server = new ServerProc(variant, { cpu: SERVER_CPU, extraEnv: { ROOMCAST_METRICS: 'true' } });
  await server.start();
  try {
    return await rampOn([server], [server.pid], cfg, common, CLIENT_CPU);
  } finally {
    await server.stop();
  }
}

/** Two nodes, data in PostgreSQL (not pinned), bus and presence through Redis (pinned with the nodes). */
export async function runMixCluster(cfg, common, { SERVER_CPU, CLIENT_CPU }) {
  const backends = await clusterBackends(SERVER_CPU);
  const extraEnv = { ROOMCAST_METRICS: 'true', ...backends.env };
  const a = new ServerProc('roomcast', { cpu: SERVER_CPU, extraEnv });
  const b = new ServerProc('roomcast', { cpu: SERVER_CPU, extraEnv });
  try {
    await backends.ready();
    await a.start();
    await b.start();
    return await rampOn([a, b], [a.pid, b.pid, backends.pid], cfg, common, CLIENT_CPU);
  } finally {
    await a.stop();
    await b.stop();
    await backends.stop();
  }
}
