// A load-client process (pinned to the client core by run.mjs), driven over IPC:
//   setup   → open the sockets of a scenario, answer `ready`
//   start   → closed loop (per room, a window of frames in flight: a publisher sends only while
//             sent × room size − delivered < window × room size, so no recipient falls further
//             behind than the window), open loop (fixed rate; late or blocked sends are skipped
//             and counted) or idle
//   reset   → zero the counters and the latency histogram (end of warm-up)
//   report  → counters + latency histogram (compressed HDR, base64)
//   hs      → handshake loop: connect, upgrade, CONNECT, ack, RST, again; `concurrency` at a time
//   rest    → autocannon against a REST endpoint
//   stop    → close everything and exit
import { createRequire } from 'node:module';
import { Conn, nowUs, readStamp, textFrame, upgradeRequest } from './wire.mjs';

const require = createRequire(import.meta.url);
const hdr = require('hdr-histogram-js');

const newHist = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: true });

const LATE_US = 10_000; // an open-loop send this late is skipped, not sent late
const MAX_QUEUED = 1 << 20; // an open-loop send onto a socket with this much unsent is skipped
const STALL_US = 1_000_000;

const state = {
  conns: [],
  pubs: [],
  rooms: new Map(), // room id → {size, sent, delivered, pub, progressAt}
  delivered: 0,
  sent: 0,
  completed: 0,
  skipped: 0,
  stalls: 0,
  dropped: 0,
  failed: 0,
  firstError: undefined,
  hist: newHist(),
  since: nowUs(),
  running: false,
  timers: [],
  pad: '',
};

const send = (msg) => process.send(msg);
let closedWindow = 0;

process.on('message', (msg) => {
  try {
    handlers[msg.cmd](msg);
  } catch (err) {
    send({ cmd: 'error', error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));

const handlers = {
  setup(job) {
    const upgrade = upgradeRequest(job.host, job.port);
    const specs = job.sockets;
    const t0 = performance.now();
    let next = 0;
    let inFlight = 0;
    let done = 0;
    const finish = () => {
      if (done !== specs.length) return;
      send({
        cmd: 'ready',
        connected: state.conns.length,
        failed: state.failed,
        firstError: state.firstError,
        setupMs: performance.now() - t0,
      });
    };
    const openNext = () => {
      while (inFlight < (job.concurrency ?? 256) && next < specs.length) {
        const spec = specs[next++];
        inFlight++;
        const conn = new Conn(job.host, job.port, upgrade, spec.c, { collect: Boolean(spec.sample) });
        conn.spec = spec;
        conn.roomState = roomState(spec.room);
        conn.onEvent = onEvent;
        conn.onConnected = () => {
          inFlight--;
          done++;
          state.conns.push(conn);
          conn.roomState.size++;
          if (spec.pub) {
            const p = newPublisher(conn, spec);
            state.pubs.push(p);
            conn.roomState.pub = p;
          }
          openNext();
          finish();
        };
        conn.onFailed = (_c, reason) => {
          inFlight--;
          done++;
          state.failed++;
          state.firstError ??= reason;
          openNext();
          finish();
        };
        conn.onClose = () => {
          state.dropped++;
          state.firstError ??= 'a connected socket was closed by the server';
        };
      }
    };
    if (specs.length === 0) finish();
    openNext();
  },

  start(job) {
    // a new start replaces the previous mode (S3 warms the JIT up closed-loop, then runs open-loop)
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    state.running = true;
    if (job.spin) spin();
    closedWindow = job.mode === 'closed' ? job.window : 0;
    state.pad = 'x'.repeat(Math.max(0, job.pad ?? 16));
    if (job.mode === 'closed') {
      for (const p of state.pubs) refill(p.room);
      state.timers.push(
        setInterval(() => {
          const now = nowUs();
          for (const p of state.pubs) {
            const r = p.room;
            if (r.sent * r.size > r.delivered && now - r.progressAt > STALL_US) {
              // frames lost (or a recipient gone): forgive them rather than stop the room
              state.stalls++;
              r.delivered = r.sent * r.size;
              r.progressAt = now;
              refill(r);
            }
          }
        }, 250),
      );
    } else if (job.mode === 'open' && state.pubs.length > 0) {
      const interval = (1e6 * state.pubs.length) / job.rate; // µs between sends of one publisher
      const t0 = nowUs() + 1000;
      state.pubs.forEach((p, k) => (p.next = t0 + (interval * k) / state.pubs.length));
      state.timers.push(
        setInterval(() => {
          const now = nowUs();
          for (const p of state.pubs) {
            while (p.next <= now) {
              if (now - p.next > LATE_US || p.conn.sock.writableLength > MAX_QUEUED) state.skipped++;
              else publish(p);
              p.next += interval;
            }
          }
        }, 1),
      );
    }
    send({ cmd: 'started' });
  },

  reset() {
    state.delivered = state.sent = state.completed = state.skipped = state.stalls = 0;
    state.hist.reset();
    state.since = nowUs();
    send({ cmd: 'reset-done' });
  },

  report() {
    send({
      cmd: 'report',
      delivered: state.delivered,
      sent: state.sent,
      completed: state.completed,
      skipped: state.skipped,
      stalls: state.stalls,
      dropped: state.dropped,
      failed: state.failed,
      firstError: state.firstError,
      elapsedUs: nowUs() - state.since,
      hist: hdr.encodeIntoCompressedBase64(state.hist),
      samples: state.hist.totalCount,
    });
  },

  stop() {
    state.running = false;
    for (const t of state.timers) clearInterval(t);
    for (const c of state.conns) c.close();
    send({ cmd: 'stopped' });
    setTimeout(() => process.exit(0), 50);
  },

  hs(job) {
    const upgrade = upgradeRequest(job.host, job.port);
    const packets = job.connects;
    let k = 0;
    state.running = true;
    const slot = () => {
      if (!state.running) return;
      const started = nowUs();
      const conn = new Conn(job.host, job.port, upgrade, packets[k++ % packets.length]);
      conn.onConnected = () => {
        state.completed++;
        state.hist.recordValue(Math.max(1, nowUs() - started));
        conn.reset();
        setImmediate(slot);
      };
      conn.onFailed = (_c, reason) => {
        state.failed++;
        state.firstError ??= reason;
        setTimeout(slot, 10);
      };
    };
    for (let i = 0; i < job.concurrency; i++) slot();
    send({ cmd: 'started' });
  },

  async rest(job) {
    const autocannon = require('autocannon');
    const result = await autocannon({
      url: job.url,
      method: 'POST',
      headers: job.headers,
      body: job.body,
      connections: job.connections,
      pipelining: 1,
      duration: job.durationSec,
    });
    send({
      cmd: 'rest-done',
      requests: result.requests.total,
      rps: result.requests.average,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      latencyP50Ms: result.latency.p50,
      latencyP99Ms: result.latency.p99,
      durationS: result.duration,
    });
  },
};

/**
 * Keeps the client's event loop from ever sleeping in epoll_wait: on a virtual machine an idle
 * core that must be woken for every arriving frame (an IPI and a VM exit each time) limits the
 * round trip far below what either side's CPU could do.
 */
function spin() {
  if (!state.running) return;
  setImmediate(spin);
}

function roomState(id) {
  let r = state.rooms.get(id);
  if (!r) state.rooms.set(id, (r = { id, size: 0, sent: 0, delivered: 0, pub: undefined, progressAt: nowUs() }));
  return r;
}

function newPublisher(conn, spec) {
  return {
    conn,
    id: spec.pub,
    room: conn.roomState,
    prefix: `42["chat message",{"room":${JSON.stringify(spec.room)},"message":"`,
    next: 0,
  };
}

function publish(p) {
  const payload = `${p.prefix}${nowUs()}|${p.id}|${state.pad}"}]`;
  p.conn.send(textFrame(payload));
  p.room.sent++;
  state.sent++;
}

/** Closed loop: send while fewer than `window` messages' worth of frames are outstanding. */
function refill(r) {
  const p = r.pub;
  if (!p || !state.running || closedWindow === 0) return;
  r.progressAt = nowUs();
  while (r.sent * r.size - r.delivered <= (closedWindow - 1) * r.size) publish(p);
}

function onEvent(conn, payload) {
  state.delivered++;
  const r = conn.roomState;
  r.delivered++;
  if (r.pub !== undefined && closedWindow > 0 && r.sent * r.size - r.delivered <= (closedWindow - 1) * r.size) refill(r);
  if (payload === null) return;
  const stamp = readStamp(payload);
  if (stamp) state.hist.recordValue(Math.max(1, nowUs() - stamp[0]));
}
