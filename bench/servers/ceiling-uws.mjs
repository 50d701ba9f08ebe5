// The ceiling: the least a Socket.IO-speaking room server can do on uWebSockets.js.
// Engine.IO open packet, Socket.IO CONNECT answered with a sid (CONNECT auth {"room"} joins that
// room), and `42["chat message",{"room":…}]` re-published byte for byte with native app.publish
// to the room's topic (the sender included, like io.to(room).emit). No auth, no storage, no JSON
// parse on the message path (the room id is found with indexOf). REST: POST /rooms/:id/message
// publishes the body as a chat message event and answers an IMKIT-like envelope.
import { loadUws } from '../lib/uws.mjs';

const uws = loadUws();
const port = Number(process.env.PORT ?? 0);
const app = uws.App();
const OPEN_TAIL = ',"upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}';
const HEARTBEAT = 'hb';
const ROOM_KEY = Buffer.from('"room":"');
let seq = 0;

app.ws('/socket.io/*', {
  maxPayloadLength: 1 << 20,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxBackpressure: 1 << 20,
  closeOnBackpressureLimit: 1,
  upgrade: (res, req, context) => {
    res.upgrade(
      {},
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    const sid = `s${(++seq).toString(36).padStart(19, '0')}`;
    ws.getUserData().sid = sid;
    ws.subscribe(HEARTBEAT);
    ws.send(`0{"sid":"${sid}"${OPEN_TAIL}`, false);
  },
  message: (ws, message, isBinary) => {
    const buf = Buffer.from(message); // a view, no copy
    if (buf[0] !== 0x34 /* 4 */) return; // '3' pong and anything else: nothing to do
    if (buf[1] === 0x32 /* 2: EVENT */) {
      const at = buf.indexOf(ROOM_KEY);
      if (at < 0) return;
      const start = at + ROOM_KEY.length;
      const end = buf.indexOf(0x22, start);
      app.publish(buf.latin1Slice(start, end), message, isBinary);
    } else if (buf[1] === 0x30 /* 0: CONNECT */) {
      if (buf.length > 2) {
        try {
          const auth = JSON.parse(buf.toString('utf8', 2));
          if (typeof auth.room === 'string') ws.subscribe(auth.room);
        } catch {
          ws.end(1003);
          return;
        }
      }
      ws.send(`40{"sid":"${ws.getUserData().sid}"}`, false);
    }
  },
});

app.post('/rooms/:id/message', (res, req) => {
  const room = req.getParameter(0);
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const chunks = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(Buffer.from(chunk)));
    if (!isLast) return;
    const body = Buffer.concat(chunks).toString();
    app.publish(room, `42["chat message",${body}]`, false);
    if (!aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end('{"RC":0,"RM":"OK","result":{}}'));
  });
});
app.get('/healthz', (res) => res.end('ok'));

app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`ceiling: cannot listen on ${port}`);
    process.exit(1);
  }
  console.log(`listening ${uws.us_socket_local_port(token)}`);
});
setInterval(() => app.publish(HEARTBEAT, '2', false), 25_000);
