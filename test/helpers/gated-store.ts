import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteDb } from '../../src/store/sql/sqlite.js';
import { SqlStore } from '../../src/store/sql/store.js';

type Gated = 'getMessage' | 'deleteMessage' | 'addMessage' | 'putUser';
const GATED = new Set<string>(['getMessage', 'deleteMessage', 'addMessage', 'putUser']);

interface Hold {
  method: Gated;
  matches: (args: unknown[]) => boolean;
  reached: () => void;
  open: Promise<void>;
}

/**
 * The real store (SQLite, as the embedded default runs), with a way to hold one call in the
 * middle of a request: the test makes a second request happen exactly "in between", which is
 * what the race fixes are about. Nothing is faked; the held call runs unchanged once released.
 */
export class Gate {
  private holds: Hold[] = [];

  /**
   * The next call of `method` whose arguments match waits for `release()`; `reached` resolves
   * when it does. Released unused (the code under test never made that call), it is dropped.
   */
  hold(method: Gated, matches: (args: unknown[]) => boolean): { reached: Promise<void>; release: () => void } {
    let open!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const reachedP = new Promise<void>((r) => (reached = r));
    const hold: Hold = { method, matches, reached, open: gate };
    this.holds.push(hold);
    const release = () => {
      this.holds = this.holds.filter((h) => h !== hold);
      open();
    };
    return { reached: reachedP, release };
  }

  /** Resolves when the call may go on (at once unless a hold matches it). */
  async pass(method: string, args: unknown[]): Promise<void> {
    const i = this.holds.findIndex((h) => h.method === method && h.matches(args));
    if (i < 0) return;
    const [h] = this.holds.splice(i, 1);
    h!.reached();
    await h!.open;
  }

  /** A store whose gated methods pass through this gate first. */
  static async store(gate: Gate): Promise<SqlStore> {
    const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-gated-'));
    const store = await SqlStore.open(new SqliteDb(path.join(dir, 'roomcast.db')));
    return new Proxy(store, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || !GATED.has(prop) || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          await gate.pass(prop, args);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
}
