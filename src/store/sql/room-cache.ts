/**
 * An exact cache of what the send path reads of a room (`getRoomForUser`: the document, the
 * last-message columns and one member's row), for a database that only this connection
 * writes as far as it can tell: SQLite, whose `PRAGMA data_version` reports commits made by
 * any other connection or process, and then the whole cache is dropped.
 *
 * Exact, not "fresh enough": every write this store makes to a room's rows either updates
 * the entry with exactly what it wrote (a stored message moves the room's last message and
 * the sender's last read; a read receipt moves one member's last read) or drops it. Reads
 * and writes interleave across awaits, so a fill is kept only when no write happened between
 * the read it comes from and the fill (`epoch`).
 */

/** The room document as stored, opaque here. */
export interface CachedRoom<Doc> {
  version: number;
  doc: Doc;
  lastMessageId: string | null;
  lastActivityAt: number;
  /** user id → that user's member row (state JSON, last read), or null: no row. */
  members: Map<string, CachedMember | null>;
}
export interface CachedMember {
  state: string;
  lastRead: string | null;
}

const MAX_ROOMS = 10_000;

export class RoomCache<Doc> {
  private rooms = new Map<string, CachedRoom<Doc>>();
  private epoch = 0;

  /** `changedElsewhere`: whether another connection committed since it was last asked. */
  constructor(
    private changedElsewhere: () => boolean,
    /** Member rows whose last read the store never moves (a member without state). */
    private frozenState: string,
  ) {}

  /** The room and the user's member row when both are known (null: known not to be a member). */
  lookup(key: string, userId: string): { room: CachedRoom<Doc>; member: CachedMember | null } | undefined {
    if (this.changedElsewhere()) this.clear();
    const room = this.rooms.get(key);
    const member = room?.members.get(userId);
    return room && member !== undefined ? { room, member } : undefined;
  }

  /** Taken before a read whose result may be filled in. */
  mark(): number {
    return this.epoch;
  }

  fill(mark: number, key: string, room: Omit<CachedRoom<Doc>, 'members'>, userId: string, member: CachedMember | null): void {
    if (mark !== this.epoch) return;
    let entry = this.rooms.get(key);
    if (!entry || entry.version !== room.version) {
      if (!entry && this.rooms.size >= MAX_ROOMS) this.rooms.delete(this.rooms.keys().next().value!);
      entry = { ...room, members: new Map() };
      this.rooms.set(key, entry);
    } else {
      entry.lastMessageId = room.lastMessageId;
      entry.lastActivityAt = room.lastActivityAt;
    }
    entry.members.set(userId, member);
  }

  /** The room's rows changed in a way not mirrored here: forget it. */
  drop(key: string): void {
    this.epoch++;
    this.rooms.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.rooms.clear();
  }

  /** A committed message: the room's last-message columns and its sender's last read moved. */
  messageStored(key: string, messageId: string, createdAt: number, sender: string | undefined): void {
    this.epoch++;
    const room = this.rooms.get(key);
    if (!room) return;
    room.lastMessageId = messageId;
    room.lastActivityAt = createdAt;
    if (sender !== undefined) this.lastReadMoved(room, sender, messageId);
  }

  /** A committed read receipt. */
  lastReadSet(key: string, userId: string, messageId: string): void {
    this.epoch++;
    const room = this.rooms.get(key);
    if (room) this.lastReadMoved(room, userId, messageId);
  }

  private lastReadMoved(room: CachedRoom<Doc>, userId: string, messageId: string): void {
    const member = room.members.get(userId);
    // The same condition as the UPDATE: rows of members without state keep theirs.
    if (member && member.state !== this.frozenState) room.members.set(userId, { state: member.state, lastRead: messageId });
  }
}
