/**
 * The presence port: its interface and the single-node implementation. The cluster one
 * (Redis) is `cluster/redis-presence.ts`.
 */

/**
 * Who is connected, cluster-wide. The gateway reports each authenticated socket as it binds
 * and closes; counts are read per application and per user.
 */
export interface Presence {
  readonly nodeId: string;
  onSocketBound(appId: string, userId: string): void;
  onSocketClosed(appId: string, userId: string): void;
  /** Sockets of the application on every node. */
  connectionCount(appId: string): Promise<number>;
  /** Sockets of the user on every node. */
  userConnectionCount(appId: string, userId: string): Promise<number>;
  isUserConnected(appId: string, userId: string): Promise<boolean>;
  /** `isUserConnected` for many users at once (one read, not one per user: member lists). */
  usersConnected(appId: string, userIds: readonly string[]): Promise<boolean[]>;
  /** Sockets on this node only (of the app, or of one user). */
  localConnectionCount(appId: string, userId?: string): number;
  close(): Promise<void>;
}

export const appField = (appId: string) => `a:${appId}`;
/** Length-prefixed so that no (app, user) pair can spell another's field. */
export const userField = (appId: string, userId: string) => `u:${appId.length}:${appId}:${userId}`;

/** This node's counts per field, kept in memory. */
export class LocalCounts {
  readonly counts = new Map<string, number>();
  add(field: string, delta: number): void {
    const n = (this.counts.get(field) ?? 0) + delta;
    if (n > 0) this.counts.set(field, n);
    else this.counts.delete(field);
  }
  get(field: string): number {
    return this.counts.get(field) ?? 0;
  }
}

/** The single node: its own sockets are everyone's. */
export class LocalPresence implements Presence {
  private local = new LocalCounts();
  constructor(readonly nodeId: string) {}

  onSocketBound(appId: string, userId: string): void {
    this.local.add(appField(appId), 1);
    this.local.add(userField(appId, userId), 1);
  }
  onSocketClosed(appId: string, userId: string): void {
    this.local.add(appField(appId), -1);
    this.local.add(userField(appId, userId), -1);
  }
  localConnectionCount(appId: string, userId?: string): number {
    return this.local.get(userId === undefined ? appField(appId) : userField(appId, userId));
  }
  async connectionCount(appId: string): Promise<number> {
    return this.localConnectionCount(appId);
  }
  async userConnectionCount(appId: string, userId: string): Promise<number> {
    return this.localConnectionCount(appId, userId);
  }
  async isUserConnected(appId: string, userId: string): Promise<boolean> {
    return this.localConnectionCount(appId, userId) > 0;
  }
  async usersConnected(appId: string, userIds: readonly string[]): Promise<boolean[]> {
    return userIds.map((id) => this.local.get(userField(appId, id)) > 0);
  }

  async close(): Promise<void> {}
}

