// The realistic-mix load client (bench/lib/mix.mjs drives it over IPC): one socket per user,
// open-loop traffic at a given message rate with the side traffic a chat app makes around each
// message (typing, lastRead, history pages, room lists; README: Scenarios, mix) and steady
// reconnect churn.
//   setup {nodes, users, rooms, clientKey, mix}  → open every user's socket, answer `ready`
//   rate {rate}                                  → run at `rate` messages/s, counters zeroed
//   report                                       → counters + delivery latency (compressed HDR)
//   stop                                         → close everything and exit
import http from 'node:http';
import { createRequire } from 'node:module';
import { Conn, nowUs, readStamp, textFrame, upgradeRequest } from './wire.mjs';

const require = createRequire(import.meta.url);
const hdr = require('hdr-histogram-js');
const newHist = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: true });

const LATE_US = 50_000; // a send this late is skipped and counted (its stamp is taken when it is sent)
const MAX_HTTP_IN_FLIGHT = 256; // beyond this the server is not keeping up: skip and count

let job; // the setup message
const agents = [];
const users = []; // {i, node, connect, token, conn, sample, headers}
let rooms = []; // {id, members, kind, lastId}
let byKind = {};
let hist = newHist();
const c = { sent: 0, sentRest: 0, sentSocket: 0, http: 0, httpErrors: 0, skipped: 0, delivered: 0, typing: 0, lastRead: 0, history: 0, roomList: 0, reconnects: 0, reconnectFailed: 0 };
let httpInFlight = 0;
let since = nowUs();
let timers = [];
let pad = 'x'.repeat(16);

const send = (msg) => process.send(msg);
process.on('disconnect', () => process.exit(0));
process.on('message', (msg) => {
  try {
    handlers[msg.cmd](msg);
  } catch (err) {
    send({ cmd: 'error', error: String(err?.stack ?? err) });
  }
});

const handlers = {
  setup(m) {
    job = m;
    for (const n of m.nodes) agents.push(new http.Agent({ keepAlive: true, maxSockets: 32 }));
    rooms = m.rooms.map((r) => ({ ...r, lastId: undefined }));
    byKind = {};
    for (const r of rooms) (byKind[r.kind] ??= []).push(r);
    for (const u of m.users) {
      users[u.i] = { ...u, conn: undefined, headers: { 'IM-CLIENT-KEY': m.clientKey, 'IM-Authorization': u.token, 'content-type': 'application/json' } };
    }
    const list = m.users.map((u) => users[u.i]);
    const t0 = performance.now();
    let next = 0;
    let open = 0;
    let done = 0;
    let failed = 0;
    let firstError;
    const pump = () => {
      while (open < 128 && next < list.length) {
        const u = list[next++];
        open++;
        connectUser(u, (err) => {
          open--;
          done++;
          if (err) {
            failed++;
            firstError ??= err;
          }
          if (done === list.length) send({ cmd: 'ready', connected: done - failed, failed, firstError, setupMs: performance.now() - t0 });
          else pump();
        });
      }
    };
    pump();
  },

  rate(m) {
    for (const t of timers) clearInterval(t);
    timers = [];
    for (const k of Object.keys(c)) c[k] = 0;
    hist = newHist();
    since = nowUs();
    pad = 'x'.repeat(m.pad ?? 16);
    if (m.rate > 0) startTraffic(m.rate, job.mix);
    send({ cmd: 'rate-set' });
  },

  report() {
    send({ cmd: 'report', ...c, httpInFlight, elapsedUs: nowUs() - since, hist: hdr.encodeIntoCompressedBase64(hist), samples: hist.totalCount });
  },

  stop() {
    for (const t of timers) clearInterval(t);
    for (const u of users) u?.conn?.close();
    for (const a of agents) a.destroy();
    send({ cmd: 'stopped' });
    setTimeout(() => process.exit(0), 50);
  },
};

function connectUser(u, done) {
  const node = job.nodes[u.node];
  const conn = new Conn(node.host, node.port, upgradeRequest(node.host, node.port), u.connect, { collect: u.sample });
  conn.onEvent = (_conn, payload) => {
    c.delivered++;
    if (payload === null) return;
    const stamp = readStamp(payload);
    if (stamp) hist.recordValue(Math.max(1, nowUs() - stamp[0]));
  };
  conn.onConnected = () => {
    u.conn = conn;
    done();
  };
  conn.onFailed = (_c, reason) => done(reason);
  conn.onClose = () => {
    if (u.conn === conn) u.conn = undefined;
  };
}

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const chance = (p) => Math.random() < p;

/** Open loop: `rate` messages/s from a 1 ms ticker, each with its side traffic; churn on its own timer. */
function startTraffic(rate, mix) {
  const interval = 1e6 / rate;
  let due = nowUs() + 1000;
  timers.push(
    setInterval(() => {
      const now = nowUs();
      while (due <= now) {
        if (now - due > LATE_US || httpInFlight > MAX_HTTP_IN_FLIGHT) c.skipped++;
        else oneMessage(mix);
        due += interval;
      }
    }, 1),
  );
  // Reconnect churn: `mix.churnPerSec` of the sockets per second drop and reconnect.
  const churnEvery = 100;
  let churnDebt = 0;
  timers.push(
    setInterval(() => {
      churnDebt += (users.length * mix.churnPerSec * churnEvery) / 1000;
      for (; churnDebt >= 1; churnDebt--) {
        const u = users[Math.floor(Math.random() * users.length)];
        if (!u?.conn) continue;
        const old = u.conn;
        u.conn = undefined;
        old.close();
        c.reconnects++;
        connectUser(u, (err) => err && c.reconnectFailed++);
      }
    }, churnEvery),
  );
}

function oneMessage(mix) {
  const r = pick(byKind[pickKind(mix.roomShare)]);
  const sender = users[pick(r.members)];
  // The composer's typing indicator precedes most messages (sent over the socket).
  if (sender.conn && chance(mix.typingPerMessage)) {
    sender.conn.send(textFrame(`42["typing",${JSON.stringify(r.id)}]`));
    c.typing++;
  }
  const text = `${nowUs()}|0|${pad}`;
  if (!sender.conn || chance(mix.restShare)) {
    // The Vue SDK's send: POST /rooms/:id/message (body as the SDK posts it)
    request(sender, 'POST', `/rooms/${encodeURIComponent(r.id)}/message`, { roomId: r.id, messageType: 'text', message: text }, (res) => {
      if (res?._id) r.lastId = res._id;
    });
    c.sentRest++;
  } else {
    sender.conn.send(textFrame(`42["chat message",${JSON.stringify({ room: r.id, messageType: 'text', message: text })}]`));
    c.sentSocket++;
  }
  c.sent++;
  // A recipient with the room open marks it read.
  if (r.lastId && chance(mix.lastReadPerMessage)) {
    const reader = users[pick(r.members)];
    request(reader, 'PUT', `/rooms/${encodeURIComponent(r.id)}/lastRead`, { message: r.lastId });
    c.lastRead++;
  }
  if (chance(mix.historyPerMessage)) {
    request(users[pick(r.members)], 'GET', `/rooms/${encodeURIComponent(r.id)}/messages/v3?limit=20`);
    c.history++;
  }
  if (chance(mix.roomListPerMessage)) {
    request(pick(users.filter(Boolean)), 'GET', '/rooms?limit=20');
    c.roomList++;
  }
}

function pickKind(share) {
  let x = Math.random();
  for (const [kind, p] of Object.entries(share)) {
    if (x < p) return kind;
    x -= p;
  }
  return Object.keys(share)[0];
}

function request(u, method, path, body, onResult) {
  const node = job.nodes[u.node];
  const payload = body === undefined ? undefined : JSON.stringify(body);
  httpInFlight++;
  c.http++;
  const req = http.request({ host: node.host, port: node.port, method, path, agent: agents[u.node], headers: payload ? { ...u.headers, 'content-length': Buffer.byteLength(payload) } : u.headers }, (res) => {
    const chunks = [];
    res.on('data', (d) => onResult && chunks.push(d));
    res.on('end', () => {
      httpInFlight--;
      if (res.statusCode !== 200) c.httpErrors++;
      else if (onResult) {
        try {
          onResult(JSON.parse(Buffer.concat(chunks).toString()).result);
        } catch {
          // an answer we cannot read: counted as sent, no id learnt
        }
      }
    });
  });
  req.on('error', () => {
    httpInFlight--;
    c.httpErrors++;
  });
  req.end(payload);
}
