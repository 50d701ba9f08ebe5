import type { Store } from '../store/store.js';
import type { Presence } from '../cluster/presence.js';
import type { MessageRecord, RoomRecord, UserRecord } from './models.js';
import { type ClientView, type MessageView, type RoomView, type ViewerFields, clientView, messageView, roomView } from './views.js';

/** Live status; while connected the user is active now, otherwise as of their last socket. */
function statusFields(user: UserRecord | undefined, connected: boolean, now: number) {
  const lastActive = connected ? now : user?.lastActiveAt;
  return {
    isSocketConnected: connected,
    lastLoginTimeMS: user?.lastLoginAt ?? null,
    lastLoginTime: user?.lastLoginAt ? new Date(user.lastLoginAt).toISOString() : null,
    lastActiveTimeMS: lastActive ?? null,
    lastActiveTime: lastActive ? new Date(lastActive).toISOString() : null,
  };
}

/** Who a room is shown to: their id (absent for the API key), rights and muted rooms. */
export interface Viewer {
  userId?: string;
  isSuperuser: boolean;
  mute?: string[];
}

/** Loads what a wire shape needs populated (users, last message, reply) and builds it. */
export class Presenter {
  constructor(
    private store: Store,
    private presence: Pick<Presence, 'isUserConnected'>,
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
      Promise.all(ids.map((id) => this.presence.isUserConnected(appId, id).catch(() => false))),
    ]);
    const now = Date.now();
    return ids.map((id, i) => ({ ...clientView(users[i], id), ...statusFields(users[i], connected[i]!, now) }));
  }

  async message(appId: string, msg: MessageRecord): Promise<MessageView> {
    // The send path: one message, usually no reply; one user read.
    if (typeof msg.fields.reply !== 'string') {
      const sender = msg.sender ? (await this.clients(appId, [msg.sender]))[0]! : null;
      return messageView(msg, sender);
    }
    return (await this.messages(appId, [msg]))[0]!;
  }

  /** Populates senders (one batched lookup) and replied-to messages. */
  async messages(appId: string, msgs: readonly MessageRecord[]): Promise<MessageView[]> {
    const replies = new Map<string, MessageRecord>();
    for (const m of msgs) {
      const replyId = m.fields.reply;
      if (typeof replyId === 'string' && !replies.has(replyId)) {
        const reply = await this.store.getMessage(appId, replyId);
        if (reply && reply.room === m.room) replies.set(replyId, reply);
      }
    }
    const senderIds = [...new Set([...msgs, ...replies.values()].flatMap((m) => (m.sender ? [m.sender] : [])))];
    const senders = new Map((await this.clients(appId, senderIds)).map((c) => [c.id, c]));
    const view = (m: MessageRecord, reply?: MessageView) =>
      messageView(m, m.sender ? senders.get(m.sender)! : null, reply);
    return msgs.map((m) => {
      const reply = typeof m.fields.reply === 'string' ? replies.get(m.fields.reply) : undefined;
      return view(m, reply && view(reply));
    });
  }

  /**
   * A room as IMKIT shows it; with a viewer, also that viewer's unread count, superuser and
   * mute flags and, in a direct room, the block timestamps.
   */
  async room(appId: string, room: RoomRecord, viewer?: Viewer): Promise<RoomView> {
    const members = await this.clientsWithStatus(appId, room.members);
    const owner = room.owner ? (await this.clients(appId, [room.owner]))[0] : undefined;
    const lastMessage = await this.messageById(appId, room.lastMessageId);
    const pinnedMessage = await this.messageById(appId, room.pinnedMessageId);
    return roomView({ room, members, owner, lastMessage, pinnedMessage, viewer: viewer && (await this.viewerFields(appId, room, viewer)) });
  }

  private async messageById(appId: string, id: string | undefined): Promise<MessageView | undefined> {
    const message = id ? await this.store.getMessage(appId, id) : undefined;
    return message ? this.message(appId, message) : undefined;
  }

  private async viewerFields(appId: string, room: RoomRecord, viewer: Viewer): Promise<ViewerFields> {
    const id = viewer.userId;
    if (!id) return { unread: 0, isSuperuser: viewer.isSuperuser, muted: false };
    const fields: ViewerFields = {
      unread: await this.store.countMessagesAfter(appId, room.id, room.memberState[id]?.lastRead),
      isSuperuser: viewer.isSuperuser,
      muted: viewer.mute?.includes(room.id) ?? false,
      pref: room.memberState[id]?.pref,
    };
    const peer = room.roomType === 'direct' ? room.members.find((m) => m !== id) : undefined;
    if (peer) {
      fields.didBlockAt = (await this.store.getBlock(appId, id, peer))?.createdAt;
      fields.wasBlockedAt = (await this.store.getBlock(appId, peer, id))?.createdAt;
    }
    return fields;
  }
}
