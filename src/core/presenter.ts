import type { Store } from '../store/store.js';
import type { MessageRecord, RoomRecord } from './models.js';
import { type ClientView, type MessageView, type RoomView, clientView, messageView, roomView } from './views.js';

/** Loads what a wire shape needs populated (users, last message, reply) and builds it. */
export class Presenter {
  constructor(private store: Store) {}

  async clients(appId: string, ids: readonly string[]): Promise<ClientView[]> {
    const users = await this.store.getUsers(appId, ids);
    return ids.map((id, i) => clientView(users[i], id));
  }

  async message(appId: string, msg: MessageRecord): Promise<MessageView> {
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

  /** A room as IMKIT shows it; with a viewer, also that viewer's unread count and superuser flag. */
  async room(appId: string, room: RoomRecord, viewer?: { userId?: string; isSuperuser: boolean }): Promise<RoomView> {
    const members = await this.clients(appId, room.members);
    const owner = room.owner ? (await this.clients(appId, [room.owner]))[0] : undefined;
    const last = room.lastMessageId ? await this.store.getMessage(appId, room.lastMessageId) : undefined;
    const lastMessage = last ? await this.message(appId, last) : undefined;
    let viewerPart: { unread: number; isSuperuser: boolean } | undefined;
    if (viewer) {
      const lastRead = viewer.userId ? room.memberState[viewer.userId]?.lastRead : undefined;
      const unread = viewer.userId ? await this.store.countMessagesAfter(appId, room.id, lastRead) : 0;
      viewerPart = { unread, isSuperuser: viewer.isSuperuser };
    }
    return roomView({ room, members, owner, lastMessage, viewer: viewerPart });
  }
}
