import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { us_listen_socket, us_socket } from '@trufflesuite/uws-js-unofficial';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadUws, uwsAvailable } from '../../src/http/uws-native.js';
import { SocketEngine } from '../../src/realtime/engine.js';
import { engineIoPollingRefusal, isEngineIoPath } from '../../src/realtime/protocol/engineio.js';
import { encodeEvent } from '../../src/realtime/protocol/socketio.js';
import type { EngineOptions, RealtimeServer, RealtimeSocket } from '../../src/realtime/types.js';
import { attachUws } from '../../src/realtime/uws.js';
import { attachWs } from '../../src/realtime/ws.js';

type Kind = 'uws' | 'ws';

interface Harness {
  port: number;
  server: RealtimeServer;
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
            server.publish(String(args[0]), encodeEvent('news', [args[1]]));
            return ack?.();
          case 'flood': {
            const frame = encodeEvent('big', ['x'.repeat(Number(args[2]))]);
            for (let i = 0; i < Number(args[1]); i++) server.publish(String(args[0]), frame);
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
      },
      onError(error, where) {
        errors.push({ where, message: (error as Error).message });
      },
    },
    options,
  );

  if (kind === 'uws') {
    const uws = loadUws();
    const app = uws.App();
    server = attachUws(app, engine);
    const listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
      app.listen('127.0.0.1', 0, (ls) => (ls ? resolve(ls) : reject(new Error('uWS listen failed')))),
    );
    return {
      port: uws.us_socket_local_port(listenSocket as us_socket),
      server,
      engine,
      log,
      errors,
      stop: async () => {
        await server.close();
        uws.us_listen_socket_close(listenSocket);
      },
    };
  }

  const httpServer = http.createServer((req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?');
    const refusal = isEngineIoPath(path) ? engineIoPollingRefusal(new URLSearchParams(query)) : { status: 404, body: '{}' };
    res.writeHead(refusal.status, { 'content-type': 'application/json' }).end(refusal.body);
  });
  server = attachWs(httpServer, engine);
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    port: (httpServer.address() as { port: number }).port,
    server,
    engine,
    log,
    errors,
    stop: async () => {
      await server.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    },
  };
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
      body: '{"code":3,"message":"Bad request"}',
    });
    expect(h.server.socketCount()).toBe(0);
  });

  it('refuses long-polling with an Engine.IO error', async () => {
    const h = await start();
    expect(await httpRequest(h.port, '/socket.io/?EIO=4&transport=polling&t=x')).toEqual({
      status: 400,
      contentType: 'application/json',
      body: '{"code":0,"message":"Transport unknown"}',
    });
    const old = await httpRequest(h.port, '/socket.io/?EIO=3&transport=polling');
    expect([old.status, old.body]).toEqual([400, '{"code":3,"message":"Bad request"}']);
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
    // ws names the cut; uWS cuts by itself and reports an abrupt close (the adapter names it a
    // slow consumer only inside our writes or when a heartbeat pong is owed, see realtime/uws.ts).
    await until(() => closesOf(h.log).some((c) => c === `close:${victim.sid}:slow consumer` || c === `close:${victim.sid}:transport close`));
    if (kind === 'ws') expect(closesOf(h.log)).toContain(`close:${victim.sid}:slow consumer`);
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
