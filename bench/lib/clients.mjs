// Spawns load-client processes pinned to the client core and talks to them over IPC.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const hdr = require('hdr-histogram-js');
const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));

/** Extra node flags for the client processes, e.g. BENCH_CLIENT_NODE_ARGS=--cpu-prof. */
const nodeArgs = () => (process.env.BENCH_CLIENT_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Beyond this many sockets a client process would run out of descriptors (ulimit -n 20000). */
export const SOCKETS_PER_PROCESS = 19_000;

class Worker {
  constructor(cpu) {
    // bash and taskset exec node in turn, so the IPC channel (fd + NODE_CHANNEL_FD) passes through.
    this.child = fork(WORKER, [], {
      execPath: 'bash',
      execArgv: ['-c', `ulimit -n 65536 2>/dev/null || true; exec nice -n -20 taskset -c ${cpu} "$@"`, 'bench', process.execPath, ...nodeArgs()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.waiters = new Map();
    this.child.on('message', (msg) => {
      if (msg.cmd === 'error') {
        console.error(`[client] ${msg.error}`);
        return;
      }
      const w = this.waiters.get(msg.cmd)?.shift();
      if (w) w(msg);
    });
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
  }

  request(msg, answer, timeoutMs = 120_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client: no '${answer}' after '${msg.cmd}' within ${timeoutMs} ms`)), timeoutMs);
      if (!this.waiters.has(answer)) this.waiters.set(answer, []);
      this.waiters.get(answer).push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.child.send(msg);
    });
  }
}

/** A group of client processes sharing one scenario's sockets. */
export class ClientGroup {
  constructor(count, cpu) {
    this.workers = Array.from({ length: count }, () => new Worker(cpu));
  }

  static forSockets(n, cpu, minProcs = 1) {
    return new ClientGroup(Math.max(minProcs, Math.ceil(n / SOCKETS_PER_PROCESS)), cpu);
  }

  all(msgFor, answer, timeoutMs) {
    return Promise.all(this.workers.map((w, i) => w.request(msgFor(i), answer, timeoutMs)));
  }

  /**
   * Splits `sockets` over the processes, keeping each room in one process (a closed loop counts
   * a room's deliveries where its publisher is), and opens them all.
   */
  async setup(host, port, sockets, concurrency = 256) {
    const parts = this.workers.map(() => []);
    const byRoom = new Map();
    for (const s of sockets) {
      if (!byRoom.has(s.room)) byRoom.set(s.room, []);
      byRoom.get(s.room).push(s);
    }
    for (const members of byRoom.values()) {
      const smallest = parts.reduce((a, b) => (b.length < a.length ? b : a));
      smallest.push(...members);
    }
    // 50,000 sockets on a loaded machine can take minutes (SYN retries when the backlog is full)
    const answers = await this.all((i) => ({ cmd: 'setup', host, port, sockets: parts[i], concurrency }), 'ready', 300_000);
    return {
      connected: sum(answers, 'connected'),
      failed: sum(answers, 'failed'),
      firstError: answers.find((a) => a.firstError)?.firstError,
      setupMs: Math.max(...answers.map((a) => a.setupMs)),
    };
  }

  start(job) {
    return this.all(() => ({ cmd: 'start', ...job }), 'started');
  }

  handshakes(job) {
    return this.all(() => ({ cmd: 'hs', ...job }), 'started');
  }

  reset() {
    return this.all(() => ({ cmd: 'reset' }), 'reset-done');
  }

  /** Counters and merged latency of several groups (e.g. the sockets of two nodes), and of each. */
  static async reportAll(groups) {
    const perGroup = await Promise.all(groups.map((g) => g.all(() => ({ cmd: 'report' }), 'report')));
    return { all: merge(perGroup.flat()), each: perGroup.map(merge) };
  }

  async report() {
    return merge(await this.all(() => ({ cmd: 'report' }), 'report'));
  }

  rest(job) {
    return this.workers[0].request({ cmd: 'rest', ...job }, 'rest-done', (job.durationSec + 30) * 1000);
  }

  async stop() {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.child.exitCode !== null) return;
        try {
          await w.request({ cmd: 'stop' }, 'stopped', 5000);
        } catch {
          // fall through to the kill below
        }
        const t = setTimeout(() => w.child.kill('SIGKILL'), 2000);
        await w.exited;
        clearTimeout(t);
      }),
    );
  }
}

function merge(answers) {
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
  for (const a of answers) hist.add(hdr.decodeFromCompressedBase64(a.hist));
  return {
    delivered: sum(answers, 'delivered'),
    sent: sum(answers, 'sent'),
    completed: sum(answers, 'completed'),
    skipped: sum(answers, 'skipped'),
    stalls: sum(answers, 'stalls'),
    dropped: sum(answers, 'dropped'),
    failed: sum(answers, 'failed'),
    firstError: answers.find((a) => a.firstError)?.firstError,
    elapsedUs: Math.max(...answers.map((a) => a.elapsedUs)),
    samples: hist.totalCount,
    p50Us: hist.totalCount ? hist.getValueAtPercentile(50) : null,
    p99Us: hist.totalCount ? hist.getValueAtPercentile(99) : null,
  };
}

function sum(list, key) {
  return list.reduce((a, x) => a + (x[key] ?? 0), 0);
}
