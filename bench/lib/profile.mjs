// Summarises a V8 .cpuprofile over the measurement window only (setup, provisioning and
// handshakes of the sockets are left out): self time and inclusive time by function.
import { readFileSync } from 'node:fs';

function label(cf) {
  const file = cf.url ? cf.url.replace(/^file:\/\//, '').split('/').slice(-3).join('/') : '';
  return `${cf.functionName || '(anonymous)'}${file ? ` ${file}:${cf.lineNumber + 1}` : ''}`;
}

/** fromUs/toUs: CLOCK_MONOTONIC microseconds (the clock V8 stamps profiles with on Linux). */
export function summarizeProfile(file, fromUs, toUs, top = Number(process.env.BENCH_PROFILE_TOP ?? 15)) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const incl = new Map();
  let t = p.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const leaf = nodes.get(p.samples[i]);
    const name = label(leaf.callFrame);
    total += dt;
    if (leaf.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    self.set(name, (self.get(name) ?? 0) + dt);
    const seen = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const nm = label(nodes.get(id).callFrame);
      if (seen.has(nm)) continue;
      seen.add(nm);
      incl.set(nm, (incl.get(nm) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const list = (m) =>
    [...m]
      .filter(([k]) => k !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => ({ fn: k, pctOfBusy: Number(((100 * v) / Math.max(1, busy)).toFixed(1)) }));
  return { windowMs: total / 1000, busyMs: busy / 1000, self: list(self), inclusive: list(incl) };
}
