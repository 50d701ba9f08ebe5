/**
 * The fan-out port. Core publishes each event once to a topic; every node whose sockets need
 * that topic receives it once and delivers it locally. The in-process implementation serves
 * the single node; a Redis pub/sub implementation serves a cluster.
 */

/** An event for the sockets listening on a room or user topic. */
export interface DeliveryMessage {
  kind: 'deliver';
  /** Socket.IO event name, e.g. `chat message`. */
  event: string;
  payload: unknown;
  /** Who caused it (chat messages, typing): recipients who blocked this user are skipped. */
  sender?: string;
  /** Other users whose content the payload carries (a quoted reply, a room's last message). */
  quoted?: string[];
  /** The payload without that content: what recipients who blocked one of `quoted` get. */
  redacted?: unknown;
}

/** Cluster-wide state changes every node must apply to its local sockets. */
export type ControlMessage =
  /** Who gained or lost access to a room's events (join/leave/kick, ban/unban). */
  | { kind: 'membership'; appId: string; roomId: string; added: string[]; removed: string[] }
  | { kind: 'room-deleted'; appId: string; roomId: string; members: string[] }
  | { kind: 'blocks-changed'; appId: string; blocker: string; blockee: string; blocked: boolean }
  | { kind: 'tokens-revoked'; appId: string; userId: string; hashes: string[] }
  | { kind: 'client-key-revoked'; appId: string }
  | { kind: 'app-deleted'; appId: string }
  /** Users' profiles changed or they were deleted: nodes drop cached copies. */
  | { kind: 'users-changed'; appId: string; userIds: string[] }
  /** An application was created or its domains changed: nodes refresh their host → app index. */
  | { kind: 'apps-changed' };

export type BusMessage = DeliveryMessage | ControlMessage;

export const CONTROL_TOPIC = 'control';
export const roomTopic = (appId: string, roomId: string): string => `${appId}/room/${roomId}`;
export const userTopic = (appId: string, userId: string): string => `${appId}/user/${userId}`;

export type BusListener = (topic: string, message: BusMessage) => void;

export interface Bus {
  publish(topic: string, message: BusMessage): void;
  /** Declare that this node has local interest in a topic (a no-op for the in-process bus). */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Resolves once the (un)subscriptions asked for so far are in effect (cluster buses; absent = immediate). */
  settled?(): Promise<void>;
  /** One listener per node: the realtime hub. */
  onMessage(listener: BusListener): void;
  ready(): boolean;
  close(): Promise<void>;
}
