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

/** Entries older than the current window are swept once the table grows past this. */
const SWEEP_AT = 50_000;

/** One node's counts (the embedded mode). */
export class MemoryRateLimiter implements RateLimiter {
  private counts = new Map<string, { window: number; windowMs: number; count: number }>();

  constructor(private now: () => number = Date.now) {}

  async hit(appId: string, subject: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = this.now();
    const window = Math.floor(now / windowMs);
    const key = `${appId}\u0000${subject}\u0000${windowMs}`;
    let entry = this.counts.get(key);
    if (!entry || entry.window !== window) {
      if (!entry && this.counts.size >= SWEEP_AT) this.sweep(now);
      entry = { window, windowMs, count: 0 };
      this.counts.set(key, entry);
    }
    entry.count++;
    return { allowed: entry.count <= limit, retryAfterMs: (window + 1) * windowMs - now };
  }

  /** Drops the entries of past windows (amortised: runs once per SWEEP_AT new keys at most). */
  private sweep(now: number): void {
    for (const [key, entry] of this.counts) if (entry.window < Math.floor(now / entry.windowMs)) this.counts.delete(key);
  }

  async close(): Promise<void> {
    this.counts.clear();
  }
}
