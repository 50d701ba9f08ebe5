// Preloaded into every server under test (`node --expose-gc --import this`): answers the bench's
// IPC requests for a full GC and a memory reading, so idle-memory figures exclude garbage, and
// for the process's CPU time (the send-cost guard, test/perf/send-cost.test.ts).
// It adds no work on any request path.
if (process.send) {
  process.on('message', async (msg) => {
    if (msg?.cmd === 'heap-snapshot') {
      // For investigating per-connection memory: `node bench/lib/heap-diff.mjs a b`
      const v8 = await import('node:v8');
      globalThis.gc?.();
      process.send({ cmd: 'heap-snapshot-done', file: v8.writeHeapSnapshot(msg.file) });
      return;
    }
    if (msg?.cmd === 'cpu') {
      // getrusage of the whole process (all threads), in µs: precise, unlike /proc's 10 ms ticks.
      process.send({ cmd: 'cpu-done', usage: process.cpuUsage() });
      return;
    }
    if (msg?.cmd !== 'gc') return;
    if (typeof globalThis.gc === 'function') {
      globalThis.gc();
      globalThis.gc();
    }
    setTimeout(() => process.send({ cmd: 'gc-done', memory: process.memoryUsage() }), 50);
  });
  // The IPC channel must not keep a finished server alive.
  process.channel?.unref();
}
