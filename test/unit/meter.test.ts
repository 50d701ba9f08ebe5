import { describe, expect, it } from 'vitest';
import { UsageMeter } from '../../src/metering/meter.js';
import { MemoryUsageSink } from '../../src/metering/memory-sink.js';
import type { UsageDelta } from '../../src/metering/sink.js';

/** A sink that is down (a Redis that went away): writes fail until it comes back. */
class FlakySink extends MemoryUsageSink {
  down = true;
  override async write(deltas: UsageDelta[]): Promise<void> {
    if (this.down) throw new Error('sink unreachable');
    return super.write(deltas);
  }
}

describe('usage meter', () => {
  it('logs a failed write to the usage sink and keeps the counts for the next flush', async () => {
    const sink = new FlakySink(60);
    const warnings: unknown[][] = [];
    const log = { warn: (...args: unknown[]) => warnings.push(args) };
    const meter = new UsageMeter(sink, { local: () => new Map(), cluster: async () => 0 }, 600_000, log);
    meter.count('app', 'messages.rest', 3);
    await meter.flush();
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]![1])).toContain('usage sink');
    sink.down = false;
    await meter.flush();
    const minute = Math.floor(Date.now() / 60_000);
    const buckets = await sink.read('app', minute - 1, minute + 1);
    expect(buckets.reduce((n, b) => n + (b.values['messages.rest'] ?? 0), 0)).toBe(3);
    await meter.close();
  });
});
