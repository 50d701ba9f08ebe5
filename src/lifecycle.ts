/**
 * The server's own state as operators and balancers see it: draining (readiness off, on the
 * way out) and the REST requests still being handled, which a drain waits for.
 */
export class Lifecycle {
  draining = false;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  /** Wraps one request's handling so that `idle()` can wait for it. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await work();
    } finally {
      if (--this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Resolves once no request is being handled. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
