// What a user would pick: a minimal socket.io@4 room broadcast server, WebSocket transport only.
// CONNECT auth {"room"} joins that room; `chat message` {room,…} is broadcast to the room with
// io.to(room).emit (sender included). REST: POST /rooms/:id/message on the same node:http server
// parses the JSON body, broadcasts it to the room and answers an IMKIT-like envelope.
// SIO_ENGINE=uws uses socket.io's attachApp on uWebSockets.js (fast publish through app.publish).
import http from 'node:http';
import { Server } from 'socket.io';
import { loadUws } from '../lib/uws.mjs';

const port = Number(process.env.PORT ?? 0);
const opts = { transports: ['websocket'], serveClient: false, maxHttpBufferSize: 1e6 };

function wire(io) {
  io.on('connection', (socket) => {
    const room = socket.handshake.auth?.room;
    if (typeof room === 'string') socket.join(room);
    socket.on('chat message', (msg) => {
      if (msg && typeof msg.room === 'string') io.to(msg.room).emit('chat message', msg);
    });
  });
}

if (process.env.SIO_ENGINE === 'uws') {
  const uws = loadUws();
  const app = uws.App();
  const io = new Server(opts);
  io.attachApp(app);
  wire(io);
  app.post('/rooms/:id/message', (res, req) => {
    const room = req.getParameter(0);
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const chunks = [];
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(Buffer.from(chunk)));
      if (!isLast) return;
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        if (!aborted) res.cork(() => res.writeStatus('400 Bad Request').end('{"RC":400}'));
        return;
      }
      io.to(room).emit('chat message', body);
      if (!aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end('{"RC":0,"RM":"OK","result":{}}'));
    });
  });
  app.get('/healthz', (res) => res.end('ok'));
  app.listen('127.0.0.1', port, (token) => {
    if (!token) process.exit(1);
    console.log(`listening ${uws.us_socket_local_port(token)}`);
  });
} else {
  const server = http.createServer((req, res) => {
    const m = /^\/rooms\/([^/]+)\/message$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) {
      res.writeHead(req.url === '/healthz' ? 200 : 404).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        res.writeHead(400).end('{"RC":400}');
        return;
      }
      io.to(decodeURIComponent(m[1])).emit('chat message', body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"RC":0,"RM":"OK","result":{}}');
    });
  });
  const io = new Server(server, opts);
  wire(io);
  server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
}
