import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.js';
import { CONTROL_TOPIC, roomTopic, userTopic } from '../../src/bus/bus.js';
import { until } from '../helpers/sockets.js';

/** Waits until the bus's subscriptions are in effect (Redis answers SUBSCRIBE asynchronously). */
export const settled = (bus: Bus): Promise<void> => (bus as Bus & { settled?: () => Promise<void> }).settled?.() ?? Promise.resolve();

type Received = { topic: string; message: BusMessage }[];

function record(bus: Bus): Received {
  const seen: Received = [];
  bus.onMessage((topic, message) => seen.push({ topic, message }));
  return seen;
}

let markers = 0;
const isMarker = (r: { message: BusMessage }) => r.message.kind === 'deliver' && r.message.event === '\u0000marker';

/**
 * Instead of waiting a while to see that nothing more arrives: `publisher` sends a marker on
 * `topic` after everything else, and once every record has it, nothing published before it is
 * still on its way (one publisher's events reach a subscriber in publish order). The markers
 * are then taken out of the records.
 */
async function drained(publisher: Bus, topic: string, records: Received[]): Promise<void> {
  const id = ++markers;
  publisher.publish(topic, { kind: 'deliver', event: '\u0000marker', payload: id });
  await until(() => records.every((r) => r.some((x) => isMarker(x) && (x.message as { payload: unknown }).payload === id)));
  for (const r of records) r.splice(0, r.length, ...r.filter((x) => !isMarker(x)));
}

/**
 * The behaviour every Bus must have. `makeNodes(n)` returns n buses that act as n nodes of
 * one deployment; `distributed` is false for the in-process bus, which is one node by nature.
 */
export function busContract(name: string, makeNodes: (count: number) => Promise<Bus[]>, distributed: boolean): void {
  describe(`Bus contract: ${name}`, () => {
    let nodes: Bus[] = [];
    const make = async (count: number) => (nodes = await makeNodes(count));
    afterEach(async () => {
      await Promise.all(nodes.map((b) => b.close()));
      nodes = [];
    });

    const room = roomTopic('app', 'r1');
    const deliver = (n: number): BusMessage => ({ kind: 'deliver', event: 'chat message', payload: { n, text: 'héllo', nested: { list: [1, 'x', null] } } });

    it('delivers a published event once, as an equal copy, control events included', async () => {
      const [bus] = await make(1);
      const seen = record(bus!);
      bus!.subscribe(CONTROL_TOPIC);
      bus!.subscribe(room);
      await settled(bus!);
      const revoked: BusMessage = { kind: 'tokens-revoked', appId: 'app', userId: 'u1', hashes: ['h'] };
      bus!.publish(room, deliver(1));
      bus!.publish(CONTROL_TOPIC, revoked);
      await until(() => seen.length >= 2);
      await drained(bus!, room, [seen]); // anything duplicated would have come before the marker
      expect(seen).toEqual([
        { topic: room, message: deliver(1) },
        { topic: CONTROL_TOPIC, message: revoked },
      ]);
      expect(bus!.ready()).toBe(true);
    });

    it('keeps the publish order of one topic', async () => {
      const [bus] = await make(1);
      const seen = record(bus!);
      bus!.subscribe(room);
      await settled(bus!);
      for (let n = 0; n < 200; n++) bus!.publish(room, deliver(n));
      await until(() => seen.length === 200);
      expect(seen.map((s) => (s.message as { payload: { n: number } }).payload.n)).toEqual([...Array(200).keys()]);
    });

    if (!distributed) return;

    it('reaches every subscribed node exactly once, the publisher included, and no other node', async () => {
      const [a, b, c] = await make(3);
      const seen = [record(a!), record(b!), record(c!)];
      a!.subscribe(room);
      b!.subscribe(room);
      c!.subscribe(userTopic('app', 'u9')); // c has no socket in the room
      await Promise.all([settled(a!), settled(b!), settled(c!)]);
      b!.publish(room, deliver(1));
      c!.publish(room, deliver(2));
      await until(() => seen[0]!.length === 2 && seen[1]!.length === 2);
      await drained(c!, room, seen.slice(0, 2));
      await drained(c!, userTopic('app', 'u9'), [seen[2]!]);
      for (const s of seen.slice(0, 2)) expect(s.map((x) => (x.message as { payload: { n: number } }).payload.n)).toEqual([1, 2]);
      expect(seen[2]).toEqual([]);
    });

    it('stops delivering to a node once it unsubscribes', async () => {
      const [a, b] = await make(2);
      const seen = [record(a!), record(b!)];
      const other = userTopic('app', 'u8');
      a!.subscribe(room);
      a!.subscribe(other);
      b!.subscribe(room);
      await Promise.all([settled(a!), settled(b!)]);
      a!.unsubscribe(room);
      await settled(a!);
      b!.publish(room, deliver(1));
      await until(() => seen[1]!.length === 1);
      await drained(b!, other, [seen[0]!]); // published after deliver(1): a would have had it first
      expect(seen[0]).toEqual([]);
    });

    it('carries control events to every node', async () => {
      const all = await make(3);
      const seen = all.map(record);
      for (const bus of all) bus.subscribe(CONTROL_TOPIC);
      await Promise.all(all.map(settled));
      all[1]!.publish(CONTROL_TOPIC, { kind: 'client-key-revoked', appId: 'app' });
      await until(() => seen.every((s) => s.length === 1));
      await drained(all[1]!, CONTROL_TOPIC, seen);
      for (const s of seen) expect(s).toEqual([{ topic: CONTROL_TOPIC, message: { kind: 'client-key-revoked', appId: 'app' } }]);
    });
  });
}
