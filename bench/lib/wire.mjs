// A WebSocket + Engine.IO/Socket.IO client on raw net sockets, built to cost the load generator
// less CPU per frame than the server it measures:
// - the upgrade request is one fixed buffer (a constant Sec-WebSocket-Key; the 101 is only checked
//   for its status line);
// - every socket reads into one shared buffer (net `onread`), so no Buffer is allocated per read;
// - frames are parsed from their header only: the payload is skipped except its first two bytes
//   (packet type), unless the connection collects payloads (handshake phase, latency-sampled or
//   publishing connections);
// - client frames are masked with the all-zero key, which RFC 6455 allows and which leaves the
//   payload bytes as they are (no XOR pass).
import net from 'node:net';

const SHARED_READ = Buffer.allocUnsafe(1 << 18);
const PONG_FRAME = Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x33]); // text "3"
const HTTP_END = Buffer.from('\r\n\r\n');
const MESSAGE_KEY = Buffer.from('"message":"');

/** Monotonic microseconds shared by all processes of this machine (CLOCK_MONOTONIC). */
const CLOCK_OFFSET = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
export const nowUs = () => Math.round(performance.now() * 1000 + CLOCK_OFFSET);

export function upgradeRequest(host, port) {
  return Buffer.from(
    'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n' +
      `Host: ${host}:${port}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    'latin1',
  );
}

/** A masked (zero key) client text frame around a latin1/utf8 payload string. */
export function textFrame(payload) {
  const len = Buffer.byteLength(payload);
  const hlen = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const buf = Buffer.allocUnsafe(hlen + len);
  buf[0] = 0x81;
  if (len < 126) {
    buf[1] = 0x80 | len;
  } else if (len < 65536) {
    buf[1] = 0x80 | 126;
    buf.writeUInt16BE(len, 2);
  } else {
    buf[1] = 0x80 | 127;
    buf.writeUInt32BE(0, 2);
    buf.writeUInt32BE(len, 6);
  }
  buf.writeUInt32BE(0, hlen - 4); // zero mask key
  buf.write(payload, hlen);
  return buf;
}

/**
 * Reads the number that starts a chat message (`"message":"<µs>|<publisher>|…`).
 * Returns [sentAtUs, publisherId] or undefined.
 */
export function readStamp(payload) {
  const at = payload.indexOf(MESSAGE_KEY);
  if (at < 0) return undefined;
  let i = at + MESSAGE_KEY.length;
  let ts = 0;
  let c;
  while ((c = payload[i++]) >= 48 && c <= 57) ts = ts * 10 + (c - 48);
  if (c !== 0x7c /* | */) return undefined;
  let pub = 0;
  while ((c = payload[i++]) >= 48 && c <= 57) pub = pub * 10 + (c - 48);
  return [ts, pub];
}

let nextLocal = 0;
/** Spread sockets over several loopback source addresses so ephemeral ports never run out. */
function localAddress() {
  nextLocal = (nextLocal % 8) + 1;
  return `127.0.0.${nextLocal}`;
}

/**
 * One Socket.IO client connection. Callbacks (set by the owner):
 *   onConnected(conn), onFailed(conn, reason), onEvent(conn, payloadOrNull), onClose(conn)
 * `connectPacket` is the Socket.IO CONNECT text, e.g. `40` or `40{"clientKey":…,"token":…}`.
 */
export class Conn {
  constructor(host, port, upgrade, connectPacket, { collect = false } = {}) {
    this.connectPacket = connectPacket;
    this.collectAfterConnect = collect;
    this.collect = true; // until connected: handshake frames are small and parsed in full
    this.phase = 0; // 0 http, 1 ws (waiting open), 2 ws (waiting CONNECT ack), 3 connected, 4 closed
    this.httpBuf = null;
    this.hdr = Buffer.allocUnsafe(14);
    this.hdrHave = 0;
    this.remain = 0; // payload bytes left in the current frame
    this.plen = 0;
    this.opcode = 0;
    this.p0 = -1;
    this.p1 = -1;
    this.acc = null; // collected payload of the current frame
    this.accAt = 0;
    this.onConnected = null;
    this.onFailed = null;
    this.onEvent = null;
    this.onClose = null;
    this.startedUs = nowUs();
    const sock = net.connect({
      host,
      port,
      localAddress: localAddress(),
      noDelay: true,
      onread: { buffer: SHARED_READ, callback: (n, buf) => this.feed(buf, 0, n) },
    });
    this.sock = sock;
    sock.on('connect', () => sock.write(upgrade));
    sock.on('error', (err) => this.fail(`socket error: ${err.code ?? err.message}`));
    sock.on('close', () => {
      if (this.phase < 3) this.fail('closed during handshake');
      const was = this.phase;
      this.phase = 4;
      if (was !== 4 && this.onClose) this.onClose(this);
    });
  }

  get connected() {
    return this.phase === 3;
  }

  fail(reason) {
    if (this.phase >= 3) return;
    this.phase = 4;
    const cb = this.onFailed;
    this.onFailed = null;
    if (cb) cb(this, reason);
    this.sock.destroy();
  }

  send(buf) {
    return this.sock.write(buf);
  }

  /** Abort with a TCP RST: no TIME_WAIT on either side (handshake-rate runs open many sockets). */
  reset() {
    this.phase = 4;
    this.sock.resetAndDestroy();
  }

  close() {
    this.phase = 4;
    this.sock.destroy();
  }

  feed(buf, i, end) {
    if (this.phase === 0) {
      i = this.readHttp(buf, i, end);
      if (i < 0) return;
    }
    while (i < end) {
      if (this.remain > 0) {
        const take = Math.min(this.remain, end - i);
        if (this.acc !== null) {
          buf.copy(this.acc, this.accAt, i, i + take);
          this.accAt += take;
        } else if (this.p1 < 0) {
          // streaming the payload's first bytes in
          if (this.p0 < 0) {
            this.p0 = buf[i];
            if (take > 1) this.p1 = buf[i + 1];
          } else this.p1 = buf[i];
        }
        this.remain -= take;
        i += take;
        if (this.remain === 0) this.frameDone();
        continue;
      }
      // frame header
      let b0, b1, len, hsize;
      if (this.hdrHave === 0 && end - i >= 2) {
        b0 = buf[i];
        b1 = buf[i + 1] & 0x7f;
        hsize = b1 < 126 ? 2 : b1 === 126 ? 4 : 10;
        if (end - i < hsize) {
          buf.copy(this.hdr, 0, i, end);
          this.hdrHave = end - i;
          return;
        }
        len = b1 < 126 ? b1 : b1 === 126 ? buf.readUInt16BE(i + 2) : buf.readUInt32BE(i + 6);
        i += hsize;
      } else {
        this.hdr[this.hdrHave++] = buf[i++];
        if (this.hdrHave < 2) continue;
        const h = this.hdr;
        const l7 = h[1] & 0x7f;
        hsize = l7 < 126 ? 2 : l7 === 126 ? 4 : 10;
        if (this.hdrHave < hsize) continue;
        b0 = h[0];
        len = l7 < 126 ? l7 : l7 === 126 ? h.readUInt16BE(2) : h.readUInt32BE(6);
        this.hdrHave = 0;
      }
      this.opcode = b0 & 0x0f;
      this.plen = len;
      this.remain = len;
      const control = this.opcode >= 8;
      if (this.collect || control) {
        this.acc = Buffer.allocUnsafe(len);
        this.accAt = 0;
        this.p0 = this.p1 = -1;
      } else {
        this.acc = null;
        this.p0 = this.p1 = -1; // filled from the payload's first bytes as they stream by
      }
      if (len === 0) this.frameDone();
    }
  }

  readHttp(buf, i, end) {
    const chunk = Buffer.from(buf.subarray(i, end));
    this.httpBuf = this.httpBuf ? Buffer.concat([this.httpBuf, chunk]) : chunk;
    const at = this.httpBuf.indexOf(HTTP_END);
    if (at < 0) {
      if (this.httpBuf.length > 16384) this.fail('oversized HTTP response');
      return -1;
    }
    const head = this.httpBuf.toString('latin1', 0, at);
    if (!head.startsWith('HTTP/1.1 101')) {
      this.fail(`upgrade refused: ${head.split('\r\n')[0]} ${this.httpBuf.toString('utf8', at + 4, at + 300)}`);
      return -1;
    }
    const rest = this.httpBuf.subarray(at + 4);
    this.httpBuf = null;
    this.phase = 1;
    if (rest.length > 0) this.feed(rest, 0, rest.length);
    return end; // the rest was fed above
  }

  frameDone() {
    const op = this.opcode;
    if (op === 1) {
      const acc = this.acc;
      if (acc !== null) {
        this.acc = null;
        this.textFrame(acc[0], acc[1], acc);
      } else this.textFrame(this.p0, this.p1, null);
      return;
    }
    const acc = this.acc;
    this.acc = null;
    if (op === 8) {
      this.sock.end();
    } else if (op === 9) {
      // websocket ping: answer a pong with the same payload (masked, zero key)
      const pong = Buffer.allocUnsafe(6 + acc.length);
      pong[0] = 0x8a;
      pong[1] = 0x80 | acc.length;
      pong.writeUInt32BE(0, 2);
      acc.copy(pong, 6);
      this.sock.write(pong);
    }
  }

  textFrame(p0, p1, payload) {
    if (p0 === 0x34 /* 4 */ && p1 === 0x32 /* 2: EVENT */) {
      if (this.phase === 3) this.onEvent(this, payload);
      return;
    }
    if (p0 === 0x32 /* 2: ping */ && this.plen === 1) {
      this.sock.write(PONG_FRAME);
      return;
    }
    if (this.phase === 1 && p0 === 0x30 /* 0: open */) {
      this.phase = 2;
      this.sock.write(textFrame(this.connectPacket));
      return;
    }
    if (p0 === 0x34 && p1 === 0x30 /* 40: CONNECT ack */ && this.phase === 2) {
      this.phase = 3;
      this.collect = this.collectAfterConnect;
      this.connectedUs = nowUs();
      if (this.onConnected) this.onConnected(this);
      return;
    }
    if (p0 === 0x34 && p1 === 0x34 /* 44: CONNECT_ERROR */) {
      this.fail(`CONNECT refused: ${payload ? payload.toString('utf8', 2, 400) : ''}`);
      return;
    }
    if (p0 === 0x34 && p1 === 0x31 /* 41: DISCONNECT */) {
      this.sock.end();
    }
  }
}
