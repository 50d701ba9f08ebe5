import type { Store } from '../store/store.js';
import { ownValue } from './own.js';
import type { Presence } from '../presence/presence.js';
import { type Clock, systemClock } from './clock.js';
import type { MessageRecord, RoomRecord, UserRecord } from './models.js';
import { type ClientView, type MessageView, type RoomView, type ViewerFields, clientView, iso, messageView, roomView } from './views.js';

/** Live status; while connected the user is active now, otherwise as of their last socket. */
function statusFields(user: UserRecord | undefined, connected: boolean, now: number) {
  const lastActive = connected ? now : user?.lastActiveAt;
  return {
    isSocketConnected: connected,
    lastLoginTimeMS: user?.lastLoginAt ?? null,
    lastLoginTime: user?.lastLoginAt ? iso(user.lastLoginAt) : null,
    lastActiveTimeMS: lastActive ?? null,
    lastActiveTime: lastActive ? iso(lastActive) : null,
  };
}

/** Who a room is shown to: their id (absent for the API key), rights and muted rooms. */
export interface Viewer {
  userId?: string;
  isSuperuser: boolean;
  mute?: string[];
  /** Senders hidden from this viewer (whom they blocked, in group rooms). */
  hidden?: ReadonlySet<string>;
}

/** How messages are shown: which one is the room's pinned message, whose content to leave out. */
export interface MessageContext {
  pinnedId?: string;
  hidden?: ReadonlySet<string>;
}

const NONE: ReadonlySet<string> = new Set();

/** Loads what a wire shape needs populated (users, last message, reply) and builds it. */
export class Presenter {
  constructor(
    private store: Store,
    private presence: Pick<Presence, 'usersConnected'>,
    private clock: Clock = systemClock,
  ) {}

  async clients(appId: string, ids: readonly string[]): Promise<ClientView[]> {
    const users = await this.store.getUsers(appId, ids);
    return ids.map((id, i) => clientView(users[i], id));
  }

  /**
   * Users with their live status (`isSocketConnected`, `lastLoginTimeMS`, `lastActiveTimeMS`):
   * for profiles and member lists, not for every message sender.
   */
  async clientsWithStatus(appId: string, ids: readonly string[]): Promise<ClientView[]> {
    const [users, connected] = await Promise.all([
      this.store.getUsers(appId, ids),
      // Presence unavailable (Redis away): shown offline rather than failing the list.
      this.presence.usersConnected(appId, ids).catch(() => ids.map(() => false)),
    ]);
    const now = this.clock.now();
    return ids.map((id, i) => ({ ...clientView(users[i], id), ...statusFields(users[i], connected[i]!, now) }));
  }

  async message(appId: string, msg: MessageRecord, context: MessageContext = {}): Promise<MessageView> {
    // The send path: one message, usually no reply; one user read.
    if (typeof msg.fields.reply !== 'string') {
      const sender = msg.sender ? (await this.clients(appId, [msg.sender]))[0]! : null;
      return messageView(msg, sender, undefined, msg.id === context.pinnedId);
    }
    return (await this.messages(appId, [msg], context))[0]!;
  }

  /** Populates senders (one batched lookup) and replied-to messages (left out when their sender is hidden). */
  async messages(appId: string, msgs: readonly MessageRecord[], context: MessageContext = {}): Promise<MessageView[]> {
    const hidden = context.hidden ?? NONE;
    const replies = new Map<string, MessageRecord>();
    for (const m of msgs) {
      const replyId = m.fields.reply;
      if (typeof replyId === 'string' && !replies.has(replyId)) {
        const reply = await this.store.getMessage(appId, replyId);
        if (reply && reply.room === m.room && !(reply.sender && hidden.has(reply.sender))) replies.set(replyId, reply);
      }
    }
    const senderIds = [...new Set([...msgs, ...replies.values()].flatMap((m) => (m.sender ? [m.sender] : [])))];
    const senders = new Map((await this.clients(appId, senderIds)).map((c) => [c.id, c]));
    const view = (m: MessageRecord, reply?: MessageView) =>
      messageView(m, m.sender ? senders.get(m.sender)! : null, reply, m.id === context.pinnedId);
    return msgs.map((m) => {
      const reply = typeof m.fields.reply === 'string' ? replies.get(m.fields.reply) : undefined;
      return view(m, reply && view(reply));
    });
  }

  /**
   * A room as IMKIT shows it; with a viewer, also that viewer's unread count, superuser and
   * mute flags and, in a direct room, the block timestamps. A viewer never sees the content
   * of senders hidden from them: their last message is the newest one they may see.
   */
  async room(appId: string, room: RoomRecord, viewer?: Viewer): Promise<RoomView> {
    const hidden = viewer?.hidden ?? NONE;
    const members = await this.clientsWithStatus(appId, room.members);
    const owner = room.owner ? (await this.clients(appId, [room.owner]))[0] : undefined;
    const context = { pinnedId: room.pinnedMessageId, hidden };
    const last = await this.lastVisible(appId, room, hidden);
    const lastMessage = last && (await this.message(appId, last, context));
    const pinned = room.pinnedMessageId ? await this.store.getMessage(appId, room.pinnedMessageId) : undefined;
    const pinnedMessage = pinned && !(pinned.sender && hidden.has(pinned.sender)) ? await this.message(appId, pinned, context) : undefined;
    return roomView({ room, members, owner, lastMessage, pinnedMessage, viewer: viewer && (await this.viewerFields(appId, room, viewer)) });
  }

  /** The room's newest message whose sender is not hidden (a walk back only when one is). */
  private async lastVisible(appId: string, room: RoomRecord, hidden: ReadonlySet<string>): Promise<MessageRecord | undefined> {
    const last = room.lastMessageId ? await this.store.getMessage(appId, room.lastMessageId) : undefined;
    if (!last || !last.sender || !hidden.has(last.sender)) return last;
    let anchor = last.id;
    for (;;) {
      const batch = await this.store.listMessages(appId, room.id, { anchor, direction: 'older', includeAnchor: false, limit: 50 });
      if (!batch || batch.length === 0) return undefined;
      const found = batch.find((m) => !m.sender || !hidden.has(m.sender));
      if (found) return found;
      anchor = batch.at(-1)!.id;
    }
  }

  private async viewerFields(appId: string, room: RoomRecord, viewer: Viewer): Promise<ViewerFields> {
    const id = viewer.userId;
    if (!id) return { unread: 0, isSuperuser: viewer.isSuperuser, muted: false };
    const fields: ViewerFields = {
      unread: await this.store.countMessagesAfter(appId, room.id, ownValue(room.memberState, id)?.lastRead, [...(viewer.hidden ?? NONE)]),
      isSuperuser: viewer.isSuperuser,
      muted: viewer.mute?.includes(room.id) ?? false,
      pref: ownValue(room.memberState, id)?.pref,
    };
    const peer = room.roomType === 'direct' ? room.members.find((m) => m !== id) : undefined;
    if (peer) {
      fields.didBlockAt = (await this.store.getBlock(appId, id, peer))?.createdAt;
      fields.wasBlockedAt = (await this.store.getBlock(appId, peer, id))?.createdAt;
    }
    return fields;
  }
}
