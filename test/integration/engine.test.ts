import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { us_listen_socket, us_socket } from '@trufflesuite/uws-js-unofficial';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createNodeServer } from '../../src/http/node.js';
import type { HttpService } from '../../src/http/types.js';
import { registerUwsHttp } from '../../src/http/uws.js';
import { loadUws, uwsAvailable } from '../../src/http/uws-native.js';
import { SocketEngine } from '../../src/realtime/engine.js';
import { attachPolling, type PollingServer } from '../../src/realtime/polling.js';
import { isEngineIoPath } from '../../src/realtime/protocol/engineio.js';
import { encodeEvent } from '../../src/realtime/protocol/socketio.js';
import type { EngineOptions, RealtimeServer, RealtimeSocket } from '../../src/realtime/types.js';
import { attachUws } from '../../src/realtime/uws.js';
import { attachWs } from '../../src/realtime/ws.js';

type Kind = 'uws' | 'ws';

interface Harness {
  port: number;
  server: RealtimeServer;
  polling: PollingServer;
  engine: SocketEngine;
  /** In hook order: "connect:<id>", "connected:<id>", "close:<id>:<reason>". */
  log: string[];
  errors: Array<{ where: string; message: string }>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** Echo harness: knows nothing about chat, only exercises the engine contract. */
async function startHarness(kind: Kind, options: Partial<EngineOptions> = {}): Promise<Harness> {
  const log: string[] = [];
  const errors: Harness['errors'] = [];
  let server!: RealtimeServer;
  let polling!: PollingServer;
  const publish = (topic: string, frame: string) => {
    server.publish(topic, frame);
    polling.publish(topic, frame);
  };
  const engine = new SocketEngine(
    {
      authorizeUpgrade(req) {
        if (req.headers['x-deny']) return { accept: false, status: 401, body: '{"message":"denied"}' };
        if (req.headers['x-deny-async']) {
          return sleep(10).then(() => ({ accept: false as const, status: 403, body: '{"message":"denied later"}' }));
        }
        if (req.headers['x-throw']) throw new Error('authorize exploded');
        return { accept: true, context: { user: req.headers['x-user'] ?? 'anon' } };
      },
      async onConnect(socket, auth) {
        log.push(`connect:${socket.id}`);
        const a = (auth ?? {}) as { deny?: boolean; slowMs?: number };
        if (a.slowMs) await sleep(a.slowMs);
        else await Promise.resolve();
        if (a.deny) return { ok: false, message: 'denied', data: { code: 'DENIED' } };
        log.push(`connected:${socket.id}`);
        return { ok: true };
      },
      onEvent(socket: RealtimeSocket, event, args, ack) {
        switch (event) {
          case 'echo':
            return ack?.(...args);
          case 'ack-twice':
            ack?.('first');
            return ack?.('second');
          case 'whoami':
            return ack?.(socket.id, socket.upgradeContext, socket.connected, socket.remoteAddress);
          case 'join':
            socket.join(String(args[0]));
            return ack?.([...socket.topics()]);
          case 'leave':
            socket.leave(String(args[0]));
            return ack?.([...socket.topics()]);
          case 'pub':
            publish(String(args[0]), encodeEvent('news', [args[1]]));
            return ack?.();
          case 'flood': {
            const frame = encodeEvent('big', ['x'.repeat(Number(args[2]))]);
            for (let i = 0; i < Number(args[1]); i++) publish(String(args[0]), frame);
            return ack?.();
          }
          case 'kick':
            return socket.disconnect('kicked');
          case 'throw':
            throw new Error('hook exploded');
          case 'reject':
            return Promise.reject(new Error('hook rejected')) as unknown as void;
        }
      },
      onClose(socket, reason) {
        log.push(`close:${socket.id}:${reason}`);
        if (reason === 'slow consumer') log.push(`held:${socket.id}:${socket.bufferedBytes}`);
      },
      onError(error, where) {
        errors.push({ where, message: (error as Error).message });
      },
    },
    options,
  );
  polling = attachPolling(engine, { closeTimeoutMs: 500, maxBufferedBytes: 64 * 1024 });
  // Long-polling through the real HTTP adapters, as server.ts wires it.
  const http: HttpService = {
    handle: async (req) =>
      isEngineIoPath(req.path) ? polling.handle(req) : { status: 404, headers: { 'content-type': 'application/json' }, body: '{}' },
    streamsBody: () => false,
  };

  if (kind === 'uws') {
    const uws = loadUws();
    const app = uws.App();
    server = attachUws(app, engine);
    registerUwsHttp(app, http, 1024 * 1024);
    const listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
      app.listen('127.0.0.1', 0, (ls) => (ls ? resolve(ls) : reject(new Error('uWS listen failed')))),
    );
    return {
      port: uws.us_socket_local_port(listenSocket as us_socket),
      server,
      polling,
      engine,
      log,
      errors,
      stop: async () => {
        await polling.close();
        await server.close();
        uws.us_listen_socket_close(listenSocket);
      },
    };
  }

  const httpServer = createNodeServer(http, 1024 * 1024);
  server = attachWs(httpServer, engine);
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    port: (httpServer.address() as { port: number }).port,
    server,
    polling,
    engine,
    log,
    errors,
    stop: async () => {
      await polling.close();
      await server.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    },
  };
}

/** What a socket cut as a slow consumer held when cut (its bufferedBytes). */
function heldAt(log: string[], sid: string): number {
  const entry = log.find((e) => e.startsWith(`held:${sid}:`));
  return Number(entry?.slice(`held:${sid}:`.length) ?? NaN);
}

function closesOf(log: string[]): string[] {
  return log.filter((entry) => entry.startsWith('close:'));
}

/** A bare websocket speaking the wire protocol by hand. */
interface RawClient {
  ws: WebSocket;
  sid: string;
  handshake: Record<string, unknown>;
  next(timeoutMs?: number): Promise<string>;
  closed: Promise<number>;
}

async function rawClient(port: number): Promise<RawClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (data) => {
    queue.push(String(data));
    wake?.();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const next = async (timeoutMs = 1000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (Date.now() > deadline) throw new Error('no frame in time');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 20);
      });
    }
    return queue.shift()!;
  };
  const open = await next();
  expect(open[0]).toBe('0');
  const handshake = JSON.parse(open.slice(1)) as { sid: string };
  return { ws, sid: handshake.sid, handshake, next, closed };
}

/** Plain HTTP request (optionally a websocket upgrade) that resolves with the non-101 answer. */
function httpRequest(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body });
        req.destroy();
      });
    });
    req.on('upgrade', () => reject(new Error('unexpectedly upgraded')));
    req.on('error', reject);
  });
}

/** One HTTP request on the long-polling path. */
async function pollRequest(
  port: number,
  method: string,
  path: string,
  body?: string,
  contentType = 'text/plain;charset=UTF-8',
  signal?: AbortSignal,
): Promise<{ status: number; contentType: string | null; cacheControl: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': contentType },
    signal,
  });
  return { status: res.status, contentType: res.headers.get('content-type'), cacheControl: res.headers.get('cache-control'), body: await res.text() };
}

/** A long-polling client speaking the wire protocol by hand (one packet per array entry). */
async function pollOpen(port: number) {
  const openResponse = await pollRequest(port, 'GET', '/socket.io/?EIO=4&transport=polling&t=abc');
  expect(openResponse.body[0]).toBe('0');
  const handshake = JSON.parse(openResponse.body.slice(1)) as { sid: string };
  const path = `/socket.io/?EIO=4&transport=polling&sid=${handshake.sid}`;
  return {
    sid: handshake.sid,
    handshake,
    openResponse,
    get: async () => {
      const res = await pollRequest(port, 'GET', path);
      expect(res.status).toBe(200);
      return res.body.split('\x1e');
    },
    post: (...packets: string[]) => pollRequest(port, 'POST', path, packets.join('\x1e')),
  };
}

/** A websocket on the Engine.IO path with extra query (e.g. the sid of an upgrade). */
async function rawWebSocket(port: number, query: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&${query}`);
  const queue: string[] = [];
  ws.on('message', (data) => queue.push(String(data)));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const next = async (timeoutMs = 2000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (Date.now() > deadline) throw new Error('no frame in time');
      await sleep(5);
    }
    return queue.shift()!;
  };
  return { ws, next, closed };
}

const upgradeHeaders = (extra: Record<string, string> = {}) => ({
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
  ...extra,
});

describe.each<Kind>(uwsAvailable() ? ['uws', 'ws'] : ['ws'])('realtime engine over %s', (kind) => {
  let harness: Harness | undefined;
  let clients: ClientSocket[] = [];
  let raws: WebSocket[] = [];

  async function start(options: Partial<EngineOptions> = {}): Promise<Harness> {
    harness = await startHarness(kind, options);
    return harness;
  }

  function client(opts: Parameters<typeof io>[1] = {}, nsp = ''): ClientSocket {
    const socket = io(`http://127.0.0.1:${harness!.port}${nsp}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      ...opts,
    });
    clients.push(socket);
    return socket;
  }

  async function connected(opts: Parameters<typeof io>[1] = {}): Promise<ClientSocket> {
    const socket = client(opts);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return socket;
  }

  async function raw(): Promise<RawClient> {
    const r = await rawClient(harness!.port);
    raws.push(r.ws);
    return r;
  }

  afterEach(async () => {
    for (const socket of clients) socket.disconnect();
    for (const ws of raws) ws.terminate();
    clients = [];
    raws = [];
    if (!harness) return;
    const { log, stop } = harness;
    harness = undefined;
    await stop();
    // onClose exactly once per socket that reached onConnect.
    const closed = closesOf(log).map((entry) => entry.split(':')[1]);
    expect(new Set(closed).size).toBe(closed.length);
    for (const entry of log.filter((e) => e.startsWith('connect:'))) {
      expect(closed).toContain(entry.split(':')[1]);
    }
  });

  it('connects, acks, and exposes the upgrade context', async () => {
    const h = await start();
    const socket = await connected({ extraHeaders: { 'x-user': 'alice' }, query: { b64: '1', extra: 'x' } });
    const echoed = await new Promise<unknown[]>((resolve) => socket.emit('echo', 1, 'two', { three: [3] }, (...args: unknown[]) => resolve(args)));
    expect(echoed).toEqual([1, 'two', { three: [3] }]);
    const [id, context, isConnected, remoteAddress] = await new Promise<unknown[]>((resolve) => socket.emit('whoami', (...args: unknown[]) => resolve(args)));
    expect(id).toBe(socket.id);
    expect(context).toEqual({ user: 'alice' });
    expect(isConnected).toBe(true);
    expect(remoteAddress).toBe('127.0.0.1');
    expect(h.server.socketCount()).toBe(1);
    socket.disconnect();
    await until(() => closesOf(h.log).length === 1);
    expect(closesOf(h.log)).toEqual([`close:${id}:client namespace disconnect`]);
    // The transport counts the websocket until its close handshake ends, which can trail onClose.
    await until(() => h.server.socketCount() === 0);
  });

  it('answers CONNECT_ERROR when onConnect refuses', async () => {
    await start();
    const socket = client({ auth: { deny: true } });
    const err = await new Promise<Error & { data?: unknown }>((resolve) => socket.once('connect_error', resolve));
    expect(err.message).toBe('denied');
    expect(err.data).toEqual({ code: 'DENIED' });
    expect(socket.connected).toBe(false);
  });

  it('refuses CONNECT to another namespace', async () => {
    await start();
    const socket = client({}, '/admin');
    const err = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
    expect(err.message).toBe('Invalid namespace');
  });

  it('refuses upgrades with the hook status and JSON body', async () => {
    const h = await start();
    const socket = client({ extraHeaders: { 'x-deny': '1' } });
    await new Promise((resolve) => socket.once('connect_error', resolve));

    const path = '/socket.io/?EIO=4&transport=websocket';
    expect(await httpRequest(h.port, path, upgradeHeaders({ 'x-deny': '1' }))).toEqual({
      status: 401,
      contentType: 'application/json',
      body: '{"message":"denied"}',
    });
    expect(await httpRequest(h.port, path, upgradeHeaders({ 'x-deny-async': '1' }))).toEqual({
      status: 403,
      contentType: 'application/json',
      body: '{"message":"denied later"}',
    });
    const failed = await httpRequest(h.port, path, upgradeHeaders({ 'x-throw': '1' }));
    expect(failed.status).toBe(500);
    expect(h.errors).toEqual([{ where: 'authorizeUpgrade', message: 'authorize exploded' }]);
    expect(await httpRequest(h.port, '/socket.io/?EIO=3&transport=websocket', upgradeHeaders())).toEqual({
      status: 400,
      contentType: 'application/json',
      body: '{"code":5,"message":"Unsupported protocol version"}',
    });
    expect(await httpRequest(h.port, '/socket.io/?EIO=4&transport=websocket&sid=nope', upgradeHeaders())).toEqual({
      status: 400,
      contentType: 'application/json',
      body: '{"code":1,"message":"Session ID unknown"}',
    });
    expect(h.server.socketCount()).toBe(0);
  });

  it('opens a long-polling session and exchanges batched packets both ways', async () => {
    const h = await start({ pingIntervalMs: 10_000 });
    const p = await pollOpen(h.port);
    expect(p.openResponse.status).toBe(200);
    expect(p.openResponse.contentType).toBe('text/plain; charset=UTF-8');
    expect(p.openResponse.cacheControl).toBe('no-store');
    expect(p.handshake).toEqual({ sid: p.sid, upgrades: ['websocket'], pingInterval: 10_000, pingTimeout: 20_000, maxPayload: 1_000_000 });
    const posted = await p.post('40');
    expect([posted.status, posted.contentType, posted.body]).toEqual([200, 'text/html', 'ok']);
    expect(await p.get()).toEqual([`40{"sid":"${p.sid}"}`]);
    // A poll waits for packets; two events in one POST are answered in one response.
    const waiting = p.get();
    await p.post('421["echo","a"]', '422["echo","b\u00e9"]');
    expect(await waiting).toEqual(['431["a"]', '432["b\u00e9"]']);
    expect(h.polling.socketCount()).toBe(1);
    expect(h.server.socketCount()).toBe(0);
    // The client closes: its waiting poll is answered with a noop, and the session is gone.
    const last = p.get();
    await until(() => h.polling.heldPolls() === 1);
    await p.post('1');
    expect(await last).toEqual(['6']);
    expect(closesOf(h.log)).toEqual([`close:${p.sid}:transport close`]);
    const gone = await pollRequest(h.port, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${p.sid}`);
    expect([gone.status, gone.body]).toEqual([400, '{"code":1,"message":"Session ID unknown"}']);
  });

  it('answers Engine.IO errors over HTTP, with engine.io codes', async () => {
    const h = await start();
    const get = (query: string, method = 'GET') => pollRequest(h.port, method, `/socket.io/?${query}`, method === 'POST' ? '40' : undefined);
    const error = async (query: string, method?: string) => {
      const res = await get(query, method);
      return [res.status, res.body];
    };
    expect(await error('EIO=4&transport=polling&sid=unknown')).toEqual([400, '{"code":1,"message":"Session ID unknown"}']);
    expect(await error('EIO=4&transport=polling', 'POST')).toEqual([400, '{"code":2,"message":"Bad handshake method"}']);
    expect(await error('EIO=4&transport=flash')).toEqual([400, '{"code":0,"message":"Transport unknown"}']);
    expect(await error('EIO=3&transport=polling')).toEqual([400, '{"code":5,"message":"Unsupported protocol version"}']);
    expect(await error('EIO=4&transport=websocket')).toEqual([400, '{"code":3,"message":"Bad request"}']);
    const p = await pollOpen(h.port);
    expect(await error(`EIO=4&transport=websocket&sid=${p.sid}`)).toEqual([400, '{"code":3,"message":"Bad request"}']);
    // Binary bodies are not Engine.IO 4: the session is closed.
    const binary = await pollRequest(h.port, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${p.sid}`, '40', 'application/octet-stream');
    expect([binary.status, binary.body]).toEqual([400, '{"code":3,"message":"Bad request"}']);
    expect(await p.get()).toEqual(['1']);
    expect(await error(`EIO=4&transport=polling&sid=${p.sid}`)).toEqual([400, '{"code":1,"message":"Session ID unknown"}']);
    expect(h.polling.socketCount()).toBe(0);
  });

  it('pings in a poll, takes the pong in a POST, and closes a silent session', async () => {
    const h = await start({ pingIntervalMs: 150, pingTimeoutMs: 150 });
    const [live, silent] = await Promise.all([pollOpen(h.port), pollOpen(h.port)]);
    for (const p of [live, silent]) {
      await p.post('40');
      expect(await p.get()).toHaveLength(1);
    }
    for (let i = 0; i < 3; i++) {
      expect(await live.get()).toEqual(['2']);
      await live.post('3');
    }
    // The silent one never answered: closed at once (a hard close drops the pings still queued).
    await until(() => closesOf(h.log).length === 1);
    expect(closesOf(h.log)).toEqual([`close:${silent.sid}:ping timeout`]);
    expect(await silent.get()).toEqual(['1']);
    await live.post('421["echo","alive"]');
    expect(await live.get()).toContain('431["alive"]');
  });

  it('refuses an overlapping poll and closes the session; an aborted poll closes it too', async () => {
    const h = await start();
    const p = await pollOpen(h.port);
    await p.post('40');
    await p.get();
    const first = p.get();
    await until(() => h.polling.heldPolls() === 1);
    const second = await pollRequest(h.port, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${p.sid}`);
    expect([second.status, second.body]).toEqual([400, '{"code":3,"message":"Bad request"}']);
    expect(await first).toEqual(['1']);
    expect(closesOf(h.log)).toEqual([`close:${p.sid}:transport close`]);

    const q = await pollOpen(h.port);
    await q.post('40');
    await q.get();
    const abort = new AbortController();
    const aborted = pollRequest(h.port, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${q.sid}`, undefined, undefined, abort.signal);
    await until(() => h.polling.heldPolls() === 1);
    abort.abort();
    await expect(aborted).rejects.toThrow();
    await until(() => closesOf(h.log).includes(`close:${q.sid}:transport close`));
  });

  it('cuts a polling session whose unpolled output passes the limit, as a slow consumer', async () => {
    const h = await start();
    const sender = await connected();
    const p = await pollOpen(h.port);
    await p.post('40');
    await p.get();
    await p.post('420["join","firehose"]');
    expect(await p.get()).toEqual(['430[["firehose"]]']);
    // The poller stops polling; 4 × 20 KB fit, the 5th passes 64 KB.
    await sender.emitWithAck('flood', 'firehose', 5, 20_000);
    await until(() => closesOf(h.log).includes(`close:${p.sid}:slow consumer`));
    // What it held when cut: the frames that fit under the limit (the one that did not is dropped).
    const held = heldAt(h.log, p.sid);
    expect(held).toBeLessThanOrEqual(64 * 1024);
    expect(held).toBeGreaterThan(64 * 1024 - 20_100);
    expect(await p.get()).toEqual(['1']); // what was queued is dropped, the close packet is left
    expect(await sender.emitWithAck('echo', 'unaffected')).toBe('unaffected');
  });

  it('upgrades a polling session to WebSocket: probe, noop, upgrade; topics and queued frames follow', async () => {
    const h = await start();
    const p = await pollOpen(h.port);
    await p.post('40');
    await p.get();
    await p.post('420["join","t1"]');
    expect(await p.get()).toEqual(['430[["t1"]]']);
    const parked = p.get();
    const ws = await rawWebSocket(h.port, `sid=${p.sid}`);
    ws.ws.send('2probe');
    expect(await ws.next()).toBe('3probe');
    expect(await parked).toEqual(['6']); // the waiting poll returns so the client can pause
    expect(await p.get()).toEqual(['6']); // a poll during the upgrade returns at once
    h.server.publish('t1', encodeEvent('news', ['during']));
    h.polling.publish('t1', encodeEvent('news', ['during']));
    ws.ws.send('5');
    expect(await ws.next()).toBe('42["news","during"]');
    h.server.publish('t1', encodeEvent('news', ['after']));
    h.polling.publish('t1', encodeEvent('news', ['after']));
    expect(await ws.next()).toBe('42["news","after"]');
    ws.ws.send('421["echo","over ws"]');
    expect(await ws.next()).toBe('431["over ws"]');
    expect([h.server.socketCount(), h.polling.socketCount()]).toEqual([1, 0]);
    // The session left polling and cannot be upgraded twice.
    const stale = await pollRequest(h.port, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${p.sid}`);
    expect([stale.status, stale.body]).toEqual([400, '{"code":1,"message":"Session ID unknown"}']);
    const again = await httpRequest(h.port, `/socket.io/?EIO=4&transport=websocket&sid=${p.sid}`, upgradeHeaders());
    expect([again.status, again.body]).toEqual([400, '{"code":1,"message":"Session ID unknown"}']);
    ws.ws.close();
    await until(() => closesOf(h.log).includes(`close:${p.sid}:transport close`));
  });

  it('keeps the session on polling when a probe fails, before or after 2probe', async () => {
    const h = await start();
    const p = await pollOpen(h.port);
    await p.post('40');
    await p.get();
    const ws = await rawWebSocket(h.port, `sid=${p.sid}`);
    ws.ws.send('2notaprobe');
    await ws.closed;
    await p.post('421["echo","still polling"]');
    expect(await p.get()).toEqual(['431["still polling"]']);
    // A probe answered, then abandoned: polls are cut short only while it lasts, then wait again.
    const probe = await rawWebSocket(h.port, `sid=${p.sid}`);
    probe.ws.send('2probe');
    expect(await probe.next()).toBe('3probe');
    expect(await p.get()).toEqual(['6']);
    probe.ws.send('4garbage');
    await probe.closed;
    const held = p.get();
    await until(() => h.polling.heldPolls() === 1);
    await p.post('422["echo","after the probe"]');
    expect(await held).toEqual(['432["after the probe"]']);
    expect(closesOf(h.log)).toEqual([]);
  });

  it('socket.io-client with default options connects by polling and upgrades; polling-only works too', async () => {
    const h = await start();
    const socket = client({ transports: undefined });
    const upgraded = new Promise<string>((resolve) => socket.io.engine.once('upgrade', (t: { name: string }) => resolve(t.name)));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    expect(await upgraded).toBe('websocket');
    expect(await socket.emitWithAck('join', 'x')).toEqual(['x']);

    const poller = client({ transports: ['polling'] });
    await new Promise<void>((resolve) => poller.once('connect', resolve));
    expect(poller.io.engine.transport.name).toBe('polling');
    expect(await poller.emitWithAck('join', 'x')).toEqual(['x']);
    const heard = [socket, poller].map((s) => new Promise((resolve) => s.once('news', resolve)));
    await poller.emitWithAck('pub', 'x', 'to both');
    expect(await Promise.all(heard)).toEqual(['to both', 'to both']);
    expect(await poller.emitWithAck('echo', 'é'.repeat(3))).toBe('ééé');
    const reason = new Promise((resolve) => poller.once('disconnect', resolve));
    poller.emit('kick');
    expect(await reason).toBe('io server disconnect');
    expect(h.polling.socketCount()).toBe(0);
  });

  it('publishes to exactly the sockets joined to a topic', async () => {
    await start();
    const [a, b, c] = await Promise.all([connected(), connected(), connected()]);
    const news = new Map<ClientSocket, unknown[]>([[a, []], [b, []], [c, []]]);
    for (const s of [a, b, c]) s.on('news', (item: unknown) => news.get(s)!.push(item));

    expect(await a.emitWithAck('join', 'room1')).toEqual(['room1']);
    expect(await b.emitWithAck('join', 'room1')).toEqual(['room1']);
    expect(await c.emitWithAck('join', 'room2')).toEqual(['room2']);
    await a.emitWithAck('pub', 'room1', 'one');
    await a.emitWithAck('pub', 'room2', 'two');
    await until(() => news.get(a)!.length === 1 && news.get(b)!.length === 1 && news.get(c)!.length === 1);
    expect([...news.values()]).toEqual([['one'], ['one'], ['two']]);

    expect(await b.emitWithAck('leave', 'room1')).toEqual([]);
    await b.emitWithAck('join', 'room3');
    await a.emitWithAck('pub', 'room1', 'three');
    await a.emitWithAck('pub', 'room3', 'four');
    await until(() => news.get(a)!.length === 2 && news.get(b)!.length === 2);
    expect(news.get(a)).toEqual(['one', 'three']);
    expect(news.get(b)).toEqual(['one', 'four']);
    expect(news.get(c)).toEqual(['two']);
  });

  it('keeps a ponging client connected and drops one that never pongs', async () => {
    const h = await start({ pingIntervalMs: 200, pingTimeoutMs: 200 });
    const socket = await connected();
    let pings = 0;
    socket.io.on('ping', () => pings++);
    let dropped = false;
    socket.on('disconnect', () => (dropped = true));

    const silent = await raw();
    silent.ws.send('40');
    expect(await silent.next()).toMatch(/^40\{"sid":/);
    await silent.closed;
    await until(() => closesOf(h.log).includes(`close:${silent.sid}:ping timeout`));

    await sleep(1000 - 400);
    expect(pings).toBeGreaterThanOrEqual(4);
    expect(dropped).toBe(false);
    expect(await socket.emitWithAck('echo', 'alive')).toBe('alive');
  });

  it('closes sockets that never send CONNECT', async () => {
    const h = await start({ connectTimeoutMs: 150 });
    const [first, second] = await Promise.all([raw(), raw()]);
    await Promise.all([first.closed, second.closed]);
    expect(closesOf(h.log).sort()).toEqual(
      [`close:${first.sid}:connect timeout`, `close:${second.sid}:connect timeout`].sort(),
    );
  });

  it('closes a socket on malformed frames and keeps serving others', async () => {
    const h = await start();
    const bystander = await connected();
    const malformed: Array<string | Buffer> = [
      'garbage',
      '',
      '42["echo",',
      '42{"not":"an array"}',
      '42[1,2]',
      '4251-["echo",{"_placeholder":true,"num":0}]',
      '42123456789012["echo"]',
      '5',
      '2',
      Buffer.from([1, 2, 3]),
    ];
    const victims = await Promise.all(malformed.map(() => raw()));
    for (const [i, victim] of victims.entries()) {
      victim.ws.send('40');
      expect(await victim.next()).toMatch(/^40/);
      victim.ws.send(malformed[i]!);
    }
    await Promise.all(victims.map((victim) => victim.closed));
    for (const victim of victims) expect(closesOf(h.log)).toContain(`close:${victim.sid}:parse error`);
    expect(await bystander.emitWithAck('echo', 'still here')).toBe('still here');
    expect(h.server.socketCount()).toBe(1);
  });

  it('announces its limits and closes sockets sending oversize frames', async () => {
    const h = await start({ maxPayloadBytes: 1000, pingIntervalMs: 300, pingTimeoutMs: 400 });
    const bystander = await connected();
    const r = await raw();
    expect(r.handshake).toEqual({ sid: r.sid, upgrades: [], pingInterval: 300, pingTimeout: 400, maxPayload: 1000 });
    expect(r.sid).toMatch(/^[A-Za-z0-9_-]{20}$/);
    r.ws.send('40');
    await r.next();
    r.ws.send(`42["echo","${'x'.repeat(1000)}"]`);
    await r.closed;
    await until(() => closesOf(h.log).includes(`close:${r.sid}:transport close`));
    expect(await bystander.emitWithAck('echo', 'fine')).toBe('fine');
  });

  it('ignores events before CONNECT and acks only once', async () => {
    await start();
    const r = await raw();
    r.ws.send('421["echo","early"]');
    r.ws.send('40');
    expect(await r.next()).toBe(`40{"sid":"${r.sid}"}`);
    r.ws.send('422["ack-twice"]');
    r.ws.send('423["echo","late"]');
    expect(await r.next()).toBe('432["first"]');
    expect(await r.next()).toBe('433["late"]');
    await expect(r.next(100)).rejects.toThrow('no frame in time');
  });

  it('drops a consumer that stops reading', async () => {
    const h = await start();
    const [sender, victim] = await Promise.all([connected(), raw()]);
    victim.ws.send('40');
    await victim.next();
    victim.ws.send('420["join","firehose"]');
    expect(await victim.next()).toBe('430[["firehose"]]');
    victim.ws.pause();
    // Each flood is one turn; kernel buffers absorb a few MB before backpressure builds up.
    for (let i = 0; i < 10 && h.server.socketCount() > 1; i++) {
      await sender.emitWithAck('flood', 'firehose', 8, 500_000);
    }
    // Both transports name the cut, with no heartbeat involved (uWS once reported it as an abrupt close).
    await until(() => closesOf(h.log).some((c) => c.startsWith(`close:${victim.sid}:`)));
    expect(closesOf(h.log)).toContain(`close:${victim.sid}:slow consumer`);
    // Held at the cut: past the 1 MiB default, by at most one turn's frames (one flood).
    const held = heldAt(h.log, victim.sid);
    expect(held).toBeGreaterThan(1024 * 1024);
    expect(held).toBeLessThanOrEqual(1024 * 1024 + 8 * 500_100);
    expect(h.server.socketCount()).toBe(1);
    expect(await sender.emitWithAck('echo', 'unaffected')).toBe('unaffected');
  });

  it('survives throwing and rejecting hooks', async () => {
    const h = await start();
    const socket = await connected();
    socket.emit('throw');
    socket.emit('reject');
    expect(await socket.emitWithAck('echo', 'ok')).toBe('ok');
    await until(() => h.errors.length === 2);
    expect(h.errors).toEqual([
      { where: 'onEvent', message: 'hook exploded' },
      { where: 'onEvent', message: 'hook rejected' },
    ]);
  });

  it('disconnects from the server side with a reason', async () => {
    const h = await start();
    const socket = await connected();
    const id = socket.id;
    const reason = new Promise((resolve) => socket.once('disconnect', resolve));
    socket.emit('kick');
    expect(await reason).toBe('io server disconnect');
    expect(closesOf(h.log)).toEqual([`close:${id}:kicked`]);
  });

  it('defers onClose until a pending onConnect settles', async () => {
    const h = await start();
    const r = await raw();
    r.ws.send('40{"slowMs":100}');
    await until(() => h.log.includes(`connect:${r.sid}`));
    r.ws.close();
    await until(() => closesOf(h.log).length === 1);
    expect(h.log).toEqual([`connect:${r.sid}`, `connected:${r.sid}`, `close:${r.sid}:transport close`]);
  });

  it('drain() closes every transport spread over the window (clients reconnect) and refuses new sessions', async () => {
    const h = await start();
    const sockets = await Promise.all(Array.from({ length: 8 }, () => connected()));
    const drops: { at: number; reason: string }[] = [];
    for (const s of sockets) s.once('disconnect', (reason: string) => drops.push({ at: Date.now(), reason }));
    const started = Date.now();
    await h.engine.drain(400);
    await until(() => drops.length === 8, 2000);
    expect(new Set(drops.map((d) => d.reason))).toEqual(new Set(['transport close']));
    const offsets = drops.map((d) => d.at - started).sort((a, b) => a - b);
    expect(offsets[0]).toBeLessThan(150);
    expect(offsets[7]).toBeGreaterThanOrEqual(300);
    expect(offsets[3]! - offsets[0]!).toBeGreaterThanOrEqual(100); // not all at once
    expect(closesOf(h.log)).toHaveLength(8);
    for (const entry of closesOf(h.log)) expect(entry).toMatch(/:server draining$/);
    const refused = await httpRequest(h.port, '/socket.io/?EIO=4&transport=websocket', upgradeHeaders());
    expect(refused.status).toBe(503);
  });

  it('close() closes every transport (no DISCONNECT: clients reconnect) and refuses new upgrades', async () => {
    const h = await start();
    const socket = await connected();
    const id = socket.id;
    const reason = new Promise((resolve) => socket.once('disconnect', resolve));
    await h.server.close();
    expect(await reason).toBe('transport close');
    expect(h.server.socketCount()).toBe(0);
    expect(closesOf(h.log)).toEqual([`close:${id}:server shutting down`]);
    const refused = await httpRequest(h.port, '/socket.io/?EIO=4&transport=websocket', upgradeHeaders());
    expect(refused.status).toBe(503);
  });
});
