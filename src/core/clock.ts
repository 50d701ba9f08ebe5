/**
 * Where the core reads the time. Injected (CoreOptions.clock) so tests can move time forward
 * for expiries instead of sleeping; the server uses the system clock.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** The system clock plus an offset a test moves forward (an expiry passes without waiting for it). */
export class ManualClock implements Clock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}
