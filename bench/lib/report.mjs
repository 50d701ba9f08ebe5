// Medians, ranges, ratios to the baselines of the same run, targets, and the Markdown table.

/** Which metrics each scenario shows; the first is the headline. `better` says which way is good. */
export const METRICS = {
  s1: ['framesPerSec', 'framesPerCpuSec', 'cpuUsPerFrame', 'serverUtil', 'p50Ms', 'p99Ms'],
  s2: ['framesPerSec', 'framesPerCpuSec', 'cpuUsPerFrame', 'serverUtil', 'p50Ms', 'p99Ms'],
  s3: ['cpuUsPerFrame', 'p50Ms', 'p99Ms', 'deliveredShare', 'sendsSkipped', 'serverUtil'],
  idle: ['bytesPerConn', 'heapBytesPerConn', 'connectPerSec', 'cpuUsPerConnect'],
  handshakes: ['handshakesPerSec', 'cpuUsPerHandshake', 'serverUtil', 'p50Ms', 'p99Ms'],
  rest: ['requestsPerSec', 'cpuUsPerRequest', 'serverUtil', 'p50Ms', 'p99Ms', 'deliveredPerRequest'],
  redis: ['framesPerSec', 'cpuUsPerFrame', 'serverUtil', 'framesOnB', 'p50Ms', 'p99Ms'],
  'cluster-s2': ['framesPerSec', 'cpuUsPerFrame', 'serverUtil', 'framesOnB', 'p50Ms', 'p99Ms'],
};

const UNITS = {
  framesPerSec: ['frames/s', 'count'],
  framesPerCpuSec: ['frames per server CPU-second', 'count'],
  cpuUsPerFrame: ['server CPU µs / frame', 'us'],
  serverUtil: ['server CPU (1 core = 100%)', 'pct'],
  p50Ms: ['latency p50', 'ms'],
  p99Ms: ['latency p99', 'ms'],
  deliveredShare: ['frames delivered / expected', 'pct'],
  sendsSkipped: ['open-loop sends skipped', 'int'],
  bytesPerConn: ['server RSS per connection', 'bytes'],
  heapBytesPerConn: ['JS heap per connection', 'bytes'],
  connectPerSec: ['sockets connected / s (setup)', 'count'],
  cpuUsPerConnect: ['server CPU µs / connect (setup)', 'us'],
  handshakesPerSec: ['handshakes/s', 'count'],
  cpuUsPerHandshake: ['server CPU µs / handshake', 'us'],
  requestsPerSec: ['requests/s', 'count'],
  cpuUsPerRequest: ['server CPU µs / request', 'us'],
  deliveredPerRequest: ['socket frames delivered / request', 'dec'],
  framesOnB: ['share of frames delivered by node B', 'pct'],
};

/** Metrics whose ratios to the baselines are shown, and targets from issue 8. */
const RATIO_METRICS = {
  s1: ['framesPerSec', 'framesPerCpuSec'],
  s2: ['framesPerSec', 'framesPerCpuSec'],
  s3: ['cpuUsPerFrame', 'p99Ms'],
  idle: ['bytesPerConn'],
  handshakes: ['handshakesPerSec', 'cpuUsPerHandshake'],
  rest: ['requestsPerSec', 'cpuUsPerRequest'],
};

export const TARGETS = [
  { id: 's1-ceiling', text: 'S1 throughput ≥ 0.85× ceiling', scenario: 's1', metric: 'framesPerSec', base: 'ceiling', op: '>=', value: 0.85 },
  { id: 's1-socketio', text: 'S1 throughput ≥ 8× socket.io', scenario: 's1', metric: 'framesPerSec', base: 'socketio', op: '>=', value: 8 },
  { id: 's2-ceiling', text: 'S2 throughput ≥ 0.8× ceiling', scenario: 's2', metric: 'framesPerSec', base: 'ceiling', op: '>=', value: 0.8 },
  { id: 's3-ceiling', text: 'S3 CPU per frame ≤ 1.2× ceiling', scenario: 's3', metric: 'cpuUsPerFrame', base: 'ceiling', op: '<=', value: 1.2 },
  { id: 's3-socketio', text: 'S3 CPU per frame ≤ 0.5× socket.io', scenario: 's3', metric: 'cpuUsPerFrame', base: 'socketio', op: '<=', value: 0.5 },
  { id: 'idle', text: 'Idle memory ≤ 3 kB per connection', scenario: 'idle', metric: 'bytesPerConn', absolute: true, op: '<=', value: 3000 },
  { id: 'hs-ceiling', text: 'Authenticated handshakes ≥ 0.6× ceiling (bare)', scenario: 'handshakes', metric: 'handshakesPerSec', base: 'ceiling', op: '>=', value: 0.6 },
  { id: 'hs-socketio', text: 'Authenticated handshakes ≥ 2× socket.io (bare)', scenario: 'handshakes', metric: 'handshakesPerSec', base: 'socketio', op: '>=', value: 2 },
  { id: 'redis', text: 'Two nodes on PostgreSQL + Redis ≥ 0.6× one node (S1 load)', scenario: 'redis', metric: 'framesPerSec', variant: 'roomcast-2nodes', baseScenario: 's1', base: 'roomcast', op: '>=', value: 0.6 },
];

const SUBJECT = 'roomcast';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return null;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function stats(values) {
  const xs = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

function metricOf(runs, scenario, variant, metric) {
  return runs.filter((r) => r.scenario === scenario && r.variant === variant && r.metrics).map((r) => ({ rep: r.rep, v: r.metrics[metric] }));
}

/** Ratio of medians, and the range of the per-repetition ratios (same repetition, same run). */
function ratio(runs, a, b) {
  const num = stats(a.map((x) => x.v));
  const den = stats(b.map((x) => x.v));
  if (!num || !den || den.median === 0) return null;
  const perRep = a
    .map((x) => {
      const y = b.find((z) => z.rep === x.rep);
      return y && y.v ? x.v / y.v : undefined;
    })
    .filter((x) => x !== undefined);
  return { value: num.median / den.median, min: perRep.length ? Math.min(...perRep) : null, max: perRep.length ? Math.max(...perRep) : null };
}

export function summarize(scenarios, runs) {
  const out = { scenarios: {}, targets: [] };
  for (const s of scenarios) {
    const entry = { variants: {}, ratios: {}, notes: [] };
    for (const v of s.variants) {
      const vs = {};
      for (const m of METRICS[s.id] ?? []) {
        const st = stats(metricOf(runs, s.id, v, m).map((x) => x.v));
        if (st) vs[m] = st;
      }
      const errors = runs.filter((r) => r.scenario === s.id && r.variant === v && (r.error || r.notRun));
      if (errors.length) vs.problems = errors.map((r) => r.error ?? `not run: ${r.notRun}`);
      entry.variants[v] = vs;
    }
    if (s.variants.includes(SUBJECT)) {
      for (const m of RATIO_METRICS[s.id] ?? []) {
        const mine = metricOf(runs, s.id, SUBJECT, m);
        entry.ratios[m] = {};
        for (const base of s.variants.filter((v) => v !== SUBJECT && !v.startsWith('roomcast'))) {
          entry.ratios[m][base] = ratio(runs, mine, metricOf(runs, s.id, base, m));
        }
      }
    }
    out.scenarios[s.id] = entry;
  }
  for (const t of TARGETS) {
    if (!out.scenarios[t.scenario]) continue;
    const mine = metricOf(runs, t.scenario, t.variant ?? SUBJECT, t.metric);
    let measured;
    if (t.absolute) {
      const st = stats(mine.map((x) => x.v));
      measured = st && { value: st.median, min: st.min, max: st.max };
    } else {
      measured = ratio(runs, mine, metricOf(runs, t.baseScenario ?? t.scenario, t.base, t.metric));
    }
    const problems = runs.filter((r) => r.scenario === t.scenario && (r.variant === (t.variant ?? SUBJECT)) && (r.error || r.notRun));
    const met = measured ? (t.op === '>=' ? measured.value >= t.value : measured.value <= t.value) : null;
    out.targets.push({
      ...t,
      measured,
      met,
      ...(measured ? {} : { status: problems[0]?.notRun ? `not run: ${problems[0].notRun}` : problems[0]?.error ? `failed: ${problems[0].error}` : 'not measured' }),
    });
  }
  return out;
}

// ---- formatting -----------------------------------------------------------------------------

function fmt(x, kind) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  switch (kind) {
    case 'count':
      return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e4 ? `${(x / 1e3).toFixed(0)} k` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
    case 'us':
      return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
    case 'ms':
      return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
    case 'pct':
      return `${(x * 100).toFixed(x >= 0.995 && x < 1 ? 1 : 0)}%`;
    case 'bytes':
      return x >= 1e6 ? `${(x / 1e6).toFixed(1)} MB` : x >= 1000 ? `${(x / 1000).toFixed(2)} kB` : `${x.toFixed(0)} B`;
    case 'int':
      return x.toFixed(0);
    default:
      return x.toFixed(2);
  }
}

function cell(st, kind) {
  if (!st) return '–';
  if (st.n === 1 || st.min === st.max) return fmt(st.median, kind);
  return `${fmt(st.median, kind)} (${fmt(st.min, kind)}–${fmt(st.max, kind)})`;
}

function ratioCell(r) {
  if (!r) return '–';
  const v = `${r.value.toFixed(2)}×`;
  if (r.min === null || r.min === r.max) return v;
  return `${v} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
}

export function renderReport(results) {
  const { summary, machine, scenarios, variants } = results;
  const allVariants = [...new Set(scenarios.flatMap((s) => s.variants))].filter((v) => v !== 'roomcast-2nodes');
  const lines = [];
  lines.push(`### Results ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC${results.quick ? ' (quick run)' : ''}`);
  lines.push('');
  lines.push(
    `Machine: ${machine.cpu}, ${machine.cores} cores${machine.virtualization ? ` (${machine.virtualization} VM)` : ''}, ${machine.memoryGB} GB, Linux ${machine.kernel}, Node.js ${machine.node}. ` +
      `Server under test pinned to CPU 1, load clients to CPU 0 (both nice −20). ${results.repetitions} repetition(s), variants interleaved; ` +
      `cells are median (min–max); ratios are ratios of medians (range of per-repetition ratios). Whole run: ${Math.round(results.durationS)} s. ` +
      `roomcast ${results.build.commit ?? ''}${results.build.dirtySrc ? ` + ${results.build.dirtySrc} uncommitted src file(s)` : ''}.`,
  );
  lines.push('');
  const bases = ['ceiling', 'socketio', 'ceiling-615'].filter((b) => allVariants.includes(b));
  const baseLabel = { ceiling: 'roomcast ÷ ceiling', socketio: 'roomcast ÷ socket.io', 'ceiling-615': 'roomcast ÷ ceiling (same bytes)' };
  const head = ['Scenario', 'Metric', ...allVariants.map((v) => variants[v]), ...bases.map((b) => baseLabel[b])];
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map(() => '---').join('|')}|`);
  for (const s of scenarios) {
    if (s.id === 'redis' || s.id === 'cluster-s2') continue;
    const entry = summary.scenarios[s.id];
    (RATIO_METRICS_ORDER(s.id)).forEach((m, i) => {
      const [label, kind] = UNITS[m];
      const row = [i === 0 ? `**${s.id.toUpperCase()}**` : '', label];
      for (const v of allVariants) row.push(s.variants.includes(v) ? cell(entry.variants[v]?.[m], kind) : '');
      const r = entry.ratios[m];
      for (const b of bases) row.push(r && r[b] !== undefined ? ratioCell(r[b]) : '');
      lines.push(`| ${row.join(' | ')} |`);
    });
  }
  lines.push('');
  lines.push('Scenarios:');
  for (const s of scenarios) lines.push(`- **${s.id.toUpperCase()}**: ${s.title}`);
  for (const [id, load] of [['redis', 'S1'], ['cluster-s2', 'S2']]) {
    const pair = summary.scenarios[id];
    if (!pair) continue;
    const v = pair.variants['roomcast-2nodes'];
    lines.push('');
    if (v?.framesPerSec) {
      const one = summary.scenarios[load.toLowerCase()]?.variants.roomcast?.framesPerSec?.median;
      lines.push(
        `Two nodes on PostgreSQL + Redis (${load} load): ${cell(v.framesPerSec, 'count')} frames/s` +
          `${one ? ` (${(v.framesPerSec.median / one).toFixed(2)}× one in-memory node in ${load})` : ''}, ${cell(v.cpuUsPerFrame, 'us')} µs CPU/frame (both nodes + Redis; PostgreSQL not counted), ` +
          `${cell(v.framesOnB, 'pct')} delivered by node B, p50 ${cell(v.p50Ms, 'ms')} ms, p99 ${cell(v.p99Ms, 'ms')} ms.`,
      );
    } else {
      lines.push(`Two nodes on PostgreSQL + Redis (${load} load): ${v?.problems?.[0] ?? 'not run'}.`);
    }
  }
  // The durable configurations against the in-memory one, same run.
  const durable = [];
  for (const [id, metric, unit] of [['s2', 'framesPerSec', 'frames/s'], ['rest', 'requestsPerSec', 'req/s']]) {
    const base = summary.scenarios[id]?.variants.roomcast?.[metric]?.median;
    for (const v of ['roomcast-sqlite', 'roomcast-pg']) {
      const got = summary.scenarios[id]?.variants[v]?.[metric]?.median;
      if (base && got) durable.push(`- ${id.toUpperCase()}: ${variants[v]} ${fmt(got, 'count')} ${unit} = ${(got / base).toFixed(2)}× in-memory (${fmt(base, 'count')})`);
    }
  }
  if (durable.length) {
    lines.push('');
    lines.push('Durable variants ÷ in-memory SQLite (same run):');
    lines.push(...durable);
  }
  const problems = scenarios.flatMap((s) =>
    Object.entries(summary.scenarios[s.id].variants).flatMap(([v, st]) => (st.problems ?? []).filter((p) => !p.startsWith('not run')).map((p) => `${s.id} ${v}: ${p}`)),
  );
  if (problems.length) {
    lines.push('');
    lines.push('Failed runs (excluded from the medians):');
    for (const p of problems) lines.push(`- ${p}`);
  }
  lines.push('');
  lines.push('| Target (issue 8) | Measured: median (per-repetition range) | Met |');
  lines.push('|---|---|---|');
  for (const t of summary.targets) {
    const m = t.measured;
    let measured;
    if (!m) measured = t.status;
    else if (t.absolute) measured = `${fmt(m.value, 'bytes')} (${fmt(m.min, 'bytes')}–${fmt(m.max, 'bytes')})`;
    else measured = ratioCell(m);
    lines.push(`| ${t.text} | ${measured} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
  }
  lines.push('');
  return lines.join('\n');
}

function RATIO_METRICS_ORDER(id) {
  return METRICS[id] ?? [];
}
