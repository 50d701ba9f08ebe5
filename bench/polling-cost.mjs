// Per-connection memory of idle sessions, by transport: N sessions that completed the Socket.IO
// CONNECT and sit idle (a polling session with its poll waiting, as a real client keeps it).
// Server in a child process (--expose-gc); heap measured after a full GC, before and after.
// Usage: npm run build && node bench/polling-cost.mjs [N] [uws|node]
import { fork } from 'node:child_process';
import http from 'node:http';
import { WebSocket } from 'ws';

const N = Number(process.argv[2] ?? 1000);
const transport = process.argv[3] ?? 'uws';

if (process.env.POLLING_COST_CHILD) {
  const { loadConfig } = await import('../dist/config.js');
  const { createLogger } = await import('../dist/observability/logger.js');
  const { startServer } = await import('../dist/server.js');
  // No credentials at handshake: sessions wait for auth2 (the auth deadline is pushed out of the way).
  const config = loadConfig({}, { port: 0, transport, logLevel: 'silent', demo: false, databasePath: ':memory:', authTimeoutMs: 600_000, handshakesPerMinutePerAddress: 10_000_000, maxUnauthenticatedSocketsPerAddress: 10_000_000 });
  const server = await startServer(config, createLogger('silent'));
  process.send({ port: server.port });
  process.on('message', () => {
    for (let i = 0; i < 3; i++) global.gc();
    process.send({ heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss });
  });
} else {
  const measure = (child) => new Promise((resolve) => { child.once('message', resolve); child.send('mem'); });
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const request = (port, method, path, body) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: body ? { 'content-type': 'text/plain' } : {} }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
  async function pollingSession(port) {
    const open = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling');
    const sid = JSON.parse(open.slice(1)).sid;
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    await request(port, 'POST', path, '40');
    await request(port, 'GET', path); // the CONNECT answer
    request(port, 'GET', path).catch(() => {}); // left waiting, as a client does
  }
  async function wsSession(port) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    await new Promise((resolve) => ws.once('message', resolve));
    ws.send('40');
    await new Promise((resolve) => ws.once('message', resolve));
    return ws;
  }
  const results = {};
  for (const kind of (process.env.KINDS ?? 'websocket,polling').split(',')) {
    const child = fork(new URL(import.meta.url).pathname, [String(N), transport], { env: { ...process.env, POLLING_COST_CHILD: '1' }, execArgv: ['--expose-gc'] });
    const { port } = await new Promise((resolve) => child.once('message', resolve));
    const before = await measure(child);
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, N - i) }, () => (kind === 'polling' ? pollingSession(port) : wsSession(port))));
    }
    await new Promise((r) => setTimeout(r, 300));
    const after = await measure(child);
    results[kind] = { heapPerSessionBytes: Math.round((after.heap - before.heap) / N), rssPerSessionBytes: Math.round((after.rss - before.rss) / N) };
    child.kill('SIGKILL');
    agent.destroy();
  }
  console.log(JSON.stringify({ transport, sessions: N, ...results }));
  process.exit(0);
}
