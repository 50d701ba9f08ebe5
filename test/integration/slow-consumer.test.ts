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
        // A heartbeat well inside the flood: uWS recognises a cut of small frames by the pong
        // the stalled socket owes (see realtime/uws.ts).
        ROOMCAST_PING_INTERVAL_MS: '200',
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

interface FloodResult {
  latencies: number[][];
  rssGrowth: number;
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
  const rss = async () => metric(await (await fetch(`${node.base}/metrics`)).text(), 'roomcast_process_resident_memory_bytes');
  const latencies: number[][] = [[], []];
  ['fast1', 'fast2'].forEach((id, i) => sockets[id]!.on('chat message', (m: { message: string }) => latencies[i]!.push(Date.now() - Number(m.message.slice(0, 13)))));
  tcpOf(sockets.slow!).pause(); // stops reading: the kernel buffers fill, then the server's
  const before = await rss();
  let peak = before;
  const padding = 'x'.repeat(SIZE);
  for (let sent = 0; sent < MESSAGES; sent += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () => sockets.sender!.emitWithAck('chat message', { room: 'busy', message: `${Date.now()}${padding}`, messageType: 'text' })),
    );
    if (sent % 500 === 0) peak = Math.max(peak, await rss());
  }
  await until(() => latencies.every((l) => l.length === MESSAGES), 30_000);
  peak = Math.max(peak, await rss());
  const metrics = await (await fetch(`${node.base}/metrics`)).text();
  for (const s of Object.values(sockets)) s.disconnect();
  return { latencies, rssGrowth: peak - before, metrics, output: node.output() };
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

  it('is cut at ROOMCAST_MAX_SOCKET_BUFFER_BYTES, logged and metered; the others keep their pace', { timeout: 120_000 }, async () => {
    const limited = await flood(transport, LIMIT, children);
    // Cut once, said in the log and counted.
    expect(limited.output).toContain('socket cut: it stopped reading');
    expect(limited.metrics).toMatch(/roomcast_usage_total\{app="[^"]+",metric="sockets\.slowConsumerCut"\} 1$/m);
    expect(metric(limited.metrics, 'roomcast_connections')).toBe(3);
    // The others got every message, and none waited long.
    const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;
    for (const l of limited.latencies) expect(p99(l), 'p99 latency of a fast reader (ms)').toBeLessThan(1000);

    // The same flood with the limit as high as it goes: the slow socket is never cut and its
    // unsent output stays in the node. With the limit, that memory is not spent.
    const unlimited = await flood(transport, 256 * 1024 * 1024, children);
    expect(unlimited.metrics).not.toMatch(/sockets\.slowConsumerCut/);
    console.info(
      `${transport}: fast-reader p99 ${p99(limited.latencies[0]!)} ms; rss growth with the limit ${(limited.rssGrowth / 1048576).toFixed(1)} MiB, ` +
        `without ${(unlimited.rssGrowth / 1048576).toFixed(1)} MiB`,
    );
    // Not asserted: RSS is too noisy to compare. Baseline growth during either flood is 45–240 MiB
    // against the 31 MiB a stalled socket can hold, and the difference came out 2.6 MiB and
    // negative in two CI runs. The figures are printed above; an exact check needs the server to
    // report a socket's unsent bytes (to do).
  });
});
