/**
 * REST rate limits: fixed windows counted per (application, subject), where the subject is the
 * API key or one user. `hit` is O(1): one map update here, one Redis round trip in cluster mode.
 */
export interface RateLimiter {
  /** Counts one request; refused (with the time until the window ends) once over `limit`. */
  hit(appId: string, subject: string, limit: number, windowMs: number): Promise<RateDecision>;
  close(): Promise<void>;
}

export interface RateDecision {
  allowed: boolean;
  /** Milliseconds until the current window ends (when a refused caller may try again). */
  retryAfterMs: number;
}

/** How often stale entries are swept (each sweep visits entries made since the last: amortised O(1)). */
const SWEEP_EVERY_MS = 60_000;

/** One node's counts (the embedded mode). */
export class MemoryRateLimiter implements RateLimiter {
  private counts = new Map<string, { window: number; windowMs: number; count: number }>();
  private lastSweep = 0;

  constructor(private now: () => number = Date.now) {}

  async hit(appId: string, subject: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = this.now();
    const window = Math.floor(now / windowMs);
    const key = `${appId}\u0000${subject}\u0000${windowMs}`;
    let entry = this.counts.get(key);
    if (!entry || entry.window !== window) {
      if (now - this.lastSweep >= SWEEP_EVERY_MS) this.sweep(now);
      entry = { window, windowMs, count: 0 };
      this.counts.set(key, entry);
    }
    entry.count++;
    return { allowed: entry.count <= limit, retryAfterMs: (window + 1) * windowMs - now };
  }

  /** Drops the entries of past windows; runs at most once per SWEEP_EVERY_MS. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, entry] of this.counts) if (entry.window < Math.floor(now / entry.windowMs)) this.counts.delete(key);
  }

  async close(): Promise<void> {
    this.counts.clear();
  }
}
