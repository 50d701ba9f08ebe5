import type { Bus, BusListener, BusMessage } from './bus.js';

/** In-process bus for the single-node default: publish is a direct call to the hub. */
export class LocalBus implements Bus {
  private listeners: BusListener[] = [];

  /** A listener's failure stays with the listener (the gateway reports its own); never the publisher's. */
  publish(topic: string, message: BusMessage): void {
    for (const listener of this.listeners) {
      try {
        listener(topic, message);
      } catch {
        // The gateway guards and logs its own delivery; nothing else listens.
      }
    }
  }
  subscribe(): void {}
  unsubscribe(): void {}
  onMessage(listener: BusListener): void {
    this.listeners.push(listener);
  }
  ready(): boolean {
    return true;
  }
  async close(): Promise<void> {
    this.listeners = [];
  }
}
