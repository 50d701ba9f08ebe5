import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket as NetSocket } from 'node:net';
import path from 'node:path';
import type { Socket } from 'socket.io-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { track } from '../helpers/redis.js';
import { OPERATOR_SECRET, TRANSPORTS, type Transport } from '../helpers/server.js';
import { connect, once, until } from '../helpers/sockets.js';

const main = path.resolve(import.meta.dirname, '../../dist/main.js');
const dirs: string[] = [];
const LIMIT = 256 * 1024;
const MESSAGES = 4000;
const SIZE = 8 * 1024;
/** The sender emits this many messages at once, then waits for their acks. */
const BATCH = 20;
/**
 * What a socket may hold past the limit: the frames written to it in one event-loop turn (ws
 * checks a socket at a turn's first write, uws once a turn's frames are sent). The node handles
 * a whole batch in one turn, and the sender's socket then gets each message twice (its ack
 * carries the message, and it is a member of the room); 1 KiB per frame covers the envelope.
 */
const MARGIN = 2 * BATCH * (SIZE + 1024);

/** The compiled server in a process of its own, so its memory is its own (read from /metrics). */
async function startNode(transport: Transport, bufferLimit: number) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'roomcast-slow-'));
  dirs.push(dataDir);
  const child = track(
    spawn(process.execPath, [main], {
      env: {
        ...process.env,
        ROOMCAST_PORT: '0',
        ROOMCAST_DEMO: 'false',
        ROOMCAST_TRANSPORT: transport,
        ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET,
        ROOMCAST_METRICS: 'true',
        ROOMCAST_LOG_LEVEL: 'info',
        ROOMCAST_MAX_SOCKET_BUFFER_BYTES: String(bufferLimit),
        ROOMCAST_SOCKET_EVENTS_PER_SECOND: '100000',
        // No heartbeat during the flood: the stalled socket owes no pong, so nothing but its
        // buffer can tell its cut from a peer that went away (uWS once logged such a cut as
        // `transport close`).
        ROOMCAST_PING_INTERVAL_MS: '600000',
        ROOMCAST_PING_TIMEOUT_MS: '60000',
        ROOMCAST_REDIS_URL: '',
        // 4000 messages from one sender: far past the per-user message quota this test is not about.
        ROOMCAST_MESSAGES_PER_MINUTE_PER_USER: '100000',
        ROOMCAST_DATABASE_URL: '',
        // A file of its own: messages stored in memory would blur the node's memory figures.
        ROOMCAST_DATABASE_PATH: path.join(dataDir, 'roomcast.db'),
        ROOMCAST_FILES_DIR: path.join(dataDir, 'files'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await until(() => /"msg":"roomcast listening"/.test(output) || child.exitCode !== null, 15_000);
  const port = Number(/"port":(\d+)/.exec(output)?.[1]);
  if (!port) throw new Error(`server did not start:\n${output}`);
  return { child, base: `http://127.0.0.1:${port}`, output: () => output };
}

/** The TCP socket under a socket.io-client connection (the `ws` client keeps it in `_socket`). */
function tcpOf(socket: Socket): NetSocket {
  return (socket.io.engine as unknown as { transport: { ws: { _socket: NetSocket } } }).transport.ws._socket;
}

const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
/** The node's fullest socket: the unsent bytes it holds, from /metrics. */
const fullest = (text: string) => metric(text, 'roomcast_socket_buffered_bytes\\{stat="max"\\}');
const held = (text: string) => metric(text, 'roomcast_socket_buffered_bytes\\{stat="sum"\\}');

interface FloodResult {
  latencies: number[][];
  /** The most any socket held, over every scrape taken during the flood. */
  maxBuffered: number;
  /** The scrape after every reader got every message. */
  metrics: string;
  output: string;
}

/**
 * One room, a sender, two readers and one socket that stops reading; 4000 messages of 8 KiB
 * (31 MiB, far more than the kernel buffers of a loopback connection hold).
 */
async function flood(transport: Transport, bufferLimit: number, children: ChildProcess[]): Promise<FloodResult> {
  const node = await startNode(transport, bufferLimit);
  children.push(node.child);
  const post = (p: string, body: unknown, headers: Record<string, string>) =>
    fetch(`${node.base}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);
  const app = (await post('/operator/apps', { name: 'flood' }, { authorization: `Bearer ${OPERATOR_SECRET}` })).result;
  const ids = ['sender', 'slow', 'fast1', 'fast2'];
  const sockets: Record<string, Socket> = {};
  for (const id of ids) {
    // imkit/api-doc pages/docs/admin/Admin-Create-or-Update-Client.md
    const token = (await post('/admin/clients', { _id: id, nickname: id, issueAccessToken: true }, { 'IM-API-KEY': app.apiKey })).result.token;
    sockets[id] = connect(node.base, { auth: { clientKey: app.clientKey, token } });
    await once(sockets[id]!, 'connect');
  }
  await post('/rooms', { _id: 'busy', name: 'busy', members: ids }, { 'IM-API-KEY': app.apiKey });
  const scrape = async () => (await fetch(`${node.base}/metrics`)).text();
  const latencies: number[][] = [[], []];
  ['fast1', 'fast2'].forEach((id, i) => sockets[id]!.on('chat message', (m: { message: string }) => latencies[i]!.push(Date.now() - Number(m.message.slice(0, 13)))));
  let echoes = 0; // the sender hears its own messages too
  sockets.sender!.on('chat message', () => echoes++);
  tcpOf(sockets.slow!).pause(); // stops reading: the kernel buffers fill, then the server's
  // Scrapes back to back for the whole flood: the gauge is read at scrape time.
  let maxBuffered = 0;
  let flooding = true;
  const sampler = (async () => {
    while (flooding) maxBuffered = Math.max(maxBuffered, fullest(await scrape()));
  })();
  const padding = 'x'.repeat(SIZE);
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    await Promise.all(
      Array.from({ length: BATCH }, () => sockets.sender!.emitWithAck('chat message', { room: 'busy', message: `${Date.now()}${padding}`, messageType: 'text' })),
    );
  }
  await until(() => latencies.every((l) => l.length === MESSAGES) && echoes === MESSAGES, 30_000);
  flooding = false;
  await sampler;
  // Every other socket has read everything: what remains buffered is the stalled socket's, if it is still there.
  const metrics = await scrape();
  maxBuffered = Math.max(maxBuffered, fullest(metrics));
  for (const s of Object.values(sockets)) s.disconnect();
  return { latencies, maxBuffered, metrics, output: node.output() };
}

/** The fields of the node's log line announcing the cut. */
function cutLog(output: string): { bufferedBytes: number; limitBytes: number; transport: string } {
  const line = output.split('\n').find((l) => l.includes('socket cut: it stopped reading'));
  if (!line) throw new Error(`no cut in the log:\n${output}`);
  return JSON.parse(line);
}

describe.each(TRANSPORTS)('a slow consumer over %s', (transport) => {
  const children: ChildProcess[] = [];
  beforeAll(() => {
    if (!existsSync(main)) throw new Error('dist/ is missing: run `npm test`, which builds first');
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is cut at ROOMCAST_MAX_SOCKET_BUFFER_BYTES (by its real cause, within one heartbeat), logged and metered; the node holds no more than the limit for it; the others keep their pace', { timeout: 120_000 }, async () => {
    const limited = await flood(transport, LIMIT, children);
    // Cut once, for what it is (no heartbeat ran: no owed pong told it), said in the log and counted.
    const cut = cutLog(limited.output);
    expect(limited.metrics).toMatch(/roomcast_usage_total\{app="[^"]+",metric="sockets\.slowConsumerCut"\} 1$/m);
    expect(metric(limited.metrics, 'roomcast_connections')).toBe(3);
    // The log gives what the socket held when cut: past the limit, by no more than one turn's frames.
    expect(cut.limitBytes).toBe(LIMIT);
    expect(cut.bufferedBytes).toBeGreaterThan(LIMIT);
    expect(cut.bufferedBytes).toBeLessThanOrEqual(LIMIT + MARGIN);
    // /metrics never saw a socket hold more, and after the cut nothing is held.
    expect(limited.maxBuffered).toBeLessThanOrEqual(LIMIT + MARGIN);
    expect(fullest(limited.metrics)).toBe(0);
    expect(held(limited.metrics)).toBe(0);
    // The others got every message, and none waited long.
    const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;
    for (const l of limited.latencies) expect(p99(l), 'p99 latency of a fast reader (ms)').toBeLessThan(1000);

    // The same flood with the limit as high as it goes: the slow socket is never cut, and the
    // gauge shows what it then holds (what the check above would have caught).
    const unlimited = await flood(transport, 256 * 1024 * 1024, children);
    expect(unlimited.metrics).not.toMatch(/sockets\.slowConsumerCut/);
    expect(metric(unlimited.metrics, 'roomcast_connections')).toBe(4);
    expect(fullest(unlimited.metrics)).toBeGreaterThan(32 * LIMIT);
    expect(held(unlimited.metrics)).toBe(fullest(unlimited.metrics));
    console.info(
      `${transport}: limit ${LIMIT} B (+ margin ${MARGIN} B); cut holding ${cut.bufferedBytes} B; most held per /metrics ${limited.maxBuffered} B with the limit, ` +
        `${unlimited.maxBuffered} B without (${(unlimited.maxBuffered / 1048576).toFixed(1)} MiB); fast-reader p99 ${p99(limited.latencies[0]!)} ms`,
    );
  });
});
