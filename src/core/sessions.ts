import type { Bus, BusListener } from '../bus/bus.js';
import { CONTROL_TOPIC, roomTopic, userTopic } from '../bus/bus.js';
import type { Presence } from '../presence/presence.js';
import type { Store } from '../store/store.js';
import type { UserActor } from './identity.js';
import { allows } from './permissions.js';
import type { UserService } from './users.js';

/**
 * What the realtime layer needs from the core, and nothing more: which topics an
 * authenticated socket may hear (decided by the permission table), whom its user blocked,
 * presence reports, and the bus subscriptions that follow local interest. Sockets never
 * reach the store, the bus or presence themselves.
 */
export class SessionService {
  constructor(
    private store: Store,
    private bus: Bus,
    private presence: Presence,
    private users: UserService,
  ) {}

  /**
   * One listener per node (the gateway) hears every bus event of the topics it subscribed.
   * Control events reach the store first, so a caching store drops what they make stale
   * before anything acts on them.
   */
  onEvent(listener: BusListener): void {
    this.bus.onMessage((topic, message) => {
      if (message.kind !== 'deliver') this.store.onControl?.(message);
      listener(topic, message);
    });
    this.bus.subscribe(CONTROL_TOPIC);
  }

  /** Local interest in a topic began or ended. */
  subscribe(topic: string): void {
    this.bus.subscribe(topic);
  }
  unsubscribe(topic: string): void {
    this.bus.unsubscribe(topic);
  }
  /** Resolves once the subscriptions asked for are in effect (a cluster bus). */
  async settled(): Promise<void> {
    await this.bus.settled?.();
  }

  /** The user's own topic and every room topic the user may hear (`rooms.listen`: member, not banned). */
  async audiences(actor: UserActor): Promise<string[]> {
    const appId = actor.app.id;
    const roomIds = await this.store.userRoomIds(appId, actor.userId);
    // Member-scoped reads: a handshake costs O(rooms), not O(rooms × their sizes).
    const rooms = await Promise.all(roomIds.map((id) => this.store.getRoomForUser(appId, id, actor.userId)));
    const topics = [userTopic(appId, actor.userId)];
    for (const room of rooms) if (room && allows(actor, 'rooms.listen', room)) topics.push(roomTopic(appId, room.id));
    return topics;
  }

  /** Whom the user blocked: live delivery skips their messages for this user. */
  async blockees(actor: UserActor): Promise<string[]> {
    return (await this.store.listBlocks(actor.app.id, actor.userId)).map((b) => b.blockee);
  }

  /** A socket of the user authenticated on this node. */
  bound(actor: UserActor): Promise<void> {
    this.presence.onSocketBound(actor.app.id, actor.userId);
    return this.users.recordLogin(actor.app.id, actor.userId);
  }

  /** A socket of the user closed; `last`: it was the user's last one on this node. */
  async closed(actor: UserActor, last: boolean): Promise<void> {
    this.presence.onSocketClosed(actor.app.id, actor.userId);
    if (last) await this.users.recordActivity(actor.app.id, actor.userId);
  }

  /** Store and bus reachable (`/readyz`). */
  ready(): boolean {
    return this.store.ready() && this.bus.ready();
  }
}
