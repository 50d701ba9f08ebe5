/** Longest delay a node timer takes; later deadlines re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the queue keeps on each entry: its deadline and its place in the heap (-1: not queued). */
export interface Expiring {
  expiresAt: number;
  expiryIndex: number;
}

/**
 * Deadlines of many entries (sockets closed when their token expires) on one timer: a binary
 * min-heap by deadline, the timer aimed at the earliest. A timer per socket would cost each
 * idle socket a Timeout, its closure and their context (about 0.3 kB).
 */
export class ExpiryQueue<T extends Expiring> {
  private readonly heap: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(
    private readonly expired: (entry: T) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  add(entry: T): void {
    if (entry.expiryIndex >= 0) this.remove(entry);
    entry.expiryIndex = this.heap.length;
    this.heap.push(entry);
    this.up(entry.expiryIndex);
    if (entry.expiresAt < this.timerAt) this.arm();
  }

  /** A no-op for an entry not queued. The timer stays: it finds nothing due and re-aims. */
  remove(entry: T): void {
    const i = entry.expiryIndex;
    if (i < 0 || this.heap[i] !== entry) return;
    entry.expiryIndex = -1;
    const last = this.heap.pop()!;
    if (last === entry) return;
    this.place(last, i);
    this.down(i);
    this.up(last.expiryIndex);
  }

  /** Stops the timer (shutdown); entries stay queued. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private arm(): void {
    clearTimeout(this.timer);
    const first = this.heap[0];
    if (!first) return this.stop();
    this.timerAt = first.expiresAt;
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(0, first.expiresAt - this.now()), MAX_TIMER_MS)).unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    for (let first = this.heap[0]; first && first.expiresAt <= now; first = this.heap[0]) {
      this.remove(first);
      this.expired(first);
    }
    if (!this.timer) this.arm();
  }

  private place(entry: T, i: number): void {
    this.heap[i] = entry;
    entry.expiryIndex = i;
  }

  private up(i: number): void {
    const entry = this.heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heap[parent]!.expiresAt <= entry.expiresAt) break;
      this.place(this.heap[parent]!, i);
      i = parent;
    }
    this.place(entry, i);
  }

  private down(i: number): void {
    const n = this.heap.length;
    const entry = this.heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.heap[right]!.expiresAt < this.heap[left]!.expiresAt ? right : left;
      if (this.heap[child]!.expiresAt >= entry.expiresAt) break;
      this.place(this.heap[child]!, i);
      i = child;
    }
    this.place(entry, i);
  }
}
