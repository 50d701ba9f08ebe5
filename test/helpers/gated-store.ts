import { MemoryStore } from '../../src/store/memory.js';

type Gated = 'getMessage' | 'deleteMessage' | 'addMessage' | 'putUser';

interface Hold {
  method: Gated;
  matches: (args: unknown[]) => boolean;
  reached: () => void;
  open: Promise<void>;
}

/**
 * The real memory store, with a way to hold one call in the middle of a request: the test
 * makes a second request happen exactly "in between", which is what the race fixes are about.
 * Nothing is faked; the held call runs unchanged once released.
 */
export class GatedStore extends MemoryStore {
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

  private async pass(method: Gated, args: unknown[]): Promise<void> {
    const i = this.holds.findIndex((h) => h.method === method && h.matches(args));
    if (i < 0) return;
    const [h] = this.holds.splice(i, 1);
    h!.reached();
    await h!.open;
  }

  override async getMessage(appId: string, messageId: string) {
    await this.pass('getMessage', [appId, messageId]);
    return super.getMessage(appId, messageId);
  }
  override async deleteMessage(appId: string, roomId: string, messageId: string) {
    await this.pass('deleteMessage', [appId, roomId, messageId]);
    return super.deleteMessage(appId, roomId, messageId);
  }
  override async putUser(...args: Parameters<MemoryStore['putUser']>) {
    await this.pass('putUser', args);
    return super.putUser(...args);
  }
  override async addMessage(...args: Parameters<MemoryStore['addMessage']>) {
    await this.pass('addMessage', args);
    return super.addMessage(...args);
  }
}
