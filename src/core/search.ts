import { z } from 'zod';
import { ownValue } from './own.js';
import type { Store } from '../store/store.js';
import type { Actor } from './identity.js';
import type { MessageRecord, RoomRecord } from './models.js';
import { asUser, isBanned, isSuperuser } from './permissions.js';
import type { Presenter } from './presenter.js';
import { normalise } from './search-text.js';
import { parseInput } from './validate.js';
import type { RoomView } from './views.js';

const TYPES = ['messages', 'roomName', 'roomMember', 'roomTags', 'roomPrefTags', 'roomPrefFolder', 'files'] as const;
type SearchType = (typeof TYPES)[number];

/** `POST /search` as the Vue SDK sends it (`searchRoomsByKeyword`: every type, a keyword). */
const searchSchema = z.looseObject({
  type: z.union([z.enum(TYPES), z.array(z.enum(TYPES)).min(1).max(TYPES.length)]).optional(),
  keyword: z.string().trim().min(1).max(256),
  room: z.string().trim().min(1).max(128).optional(),
  roomTags: z.array(z.string().max(128)).max(100).optional(),
  limit: z.number().int().min(1).max(500).optional(),
});

const FILE_TYPES = ['file', 'image', 'video', 'audio'];
/** Pages of store hits read per search at most (each up to `limit`): bounds a search whose hits the reader mostly may not see. */
const MAX_PAGES = 10;

/**
 * Keyword search over the caller's own rooms: message text through the store's full-text
 * index (`Store.searchMessages`), room names, members, tags and the caller's room preferences
 * from the caller's room list. Every requested type is answered with an array (the Vue SDK
 * iterates each).
 */
export class SearchService {
  constructor(
    private store: Store,
    private present: Presenter,
  ) {}

  async search(actor: Actor, body: unknown): Promise<Record<string, unknown[]>> {
    const me = asUser(actor, 'me.read');
    const input = parseInput(searchSchema, body);
    const types = input.type === undefined ? ['messages' as const] : typeof input.type === 'string' ? [input.type] : input.type;
    const limit = input.limit ?? 50;
    const keyword = normalise(input.keyword);
    let rooms = (await this.store.getRooms(actor.app.id, await this.store.userRoomIds(actor.app.id, me.userId))).filter(
      (r): r is RoomRecord => r !== undefined && !isBanned(me.userId, r),
    );
    if (input.room !== undefined) rooms = rooms.filter((r) => r.id === input.room);
    if (input.roomTags?.length) rooms = rooms.filter((r) => input.roomTags!.every((t) => r.roomTags.includes(t)));
    const byId = new Map(rooms.map((r) => [r.id, r]));
    const views = new Map<string, Promise<RoomView>>();
    const view = (r: RoomRecord) => {
      let v = views.get(r.id);
      if (!v) views.set(r.id, (v = this.present.room(actor.app.id, r, { userId: me.userId, isSuperuser: isSuperuser(actor, r) })));
      return v;
    };
    const result: Record<string, unknown[]> = {};
    for (const type of new Set<SearchType>(types)) {
      if (type === 'messages' || type === 'files') {
        const hits = await this.messageHits(actor, me.userId, keyword, byId, limit, type === 'files');
        result[type] = await Promise.all([...hits].map(async ([roomId, ids]) => ({ room: await view(byId.get(roomId)!), messages: ids })));
      } else {
        const matched = (await this.roomMatches(actor.app.id, me.userId, type, keyword, rooms)).slice(0, limit);
        result[type] = await Promise.all(matched.map(view));
      }
    }
    return result;
  }

  /**
   * room id → matching message ids (newest first, rooms in the order of their newest hit), at
   * most `limit` in all, each visible to the reader as in their history.
   */
  private async messageHits(actor: Actor, userId: string, keyword: string, rooms: Map<string, RoomRecord>, limit: number, filesOnly: boolean) {
    const hits = new Map<string, string[]>();
    const view = await this.readerView(actor, userId);
    let count = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const found = await this.store.searchMessages(actor.app.id, [...rooms.keys()], keyword, {
        limit,
        messageTypes: filesOnly ? FILE_TYPES : undefined,
        cursor,
      });
      for (const message of found.messages) {
        if (!(await view(rooms.get(message.room)!, message))) continue;
        let list = hits.get(message.room);
        if (!list) hits.set(message.room, (list = []));
        list.push(message.id);
        if (++count === limit) return hits;
      }
      if (found.cursor === undefined) break;
      cursor = found.cursor;
    }
    return hits;
  }

  /**
   * What the reader sees, as in their history (`MessageService.readerView`): not what they
   * deleted for themselves or before their "delete all", not what a superuser hid (unless they
   * are one), not, in group rooms, what senders they blocked wrote.
   */
  private async readerView(actor: Actor, userId: string) {
    const blocked = new Set((await this.store.listBlocks(actor.app.id, userId)).map((b) => b.blockee));
    const deletedByRoom = new Map<string, Set<string>>();
    return async (room: RoomRecord, message: MessageRecord): Promise<boolean> => {
      const clearedAt = ownValue(room.memberState, userId)?.clearedAt;
      if (clearedAt !== undefined && message.createdAt <= clearedAt) return false;
      if (room.roomType !== 'direct' && message.sender !== undefined && blocked.has(message.sender)) return false;
      const hidden = message.fields.isHidden === true || (message.sender !== undefined && room.hiddenSenders?.includes(message.sender));
      if (hidden && !isSuperuser(actor, room)) return false;
      let deleted = deletedByRoom.get(room.id);
      if (!deleted) deletedByRoom.set(room.id, (deleted = new Set(await this.store.listUserDeletedMessages(actor.app.id, userId, room.id))));
      return !deleted.has(message.id);
    };
  }

  private async roomMatches(appId: string, userId: string, type: SearchType, keyword: string, rooms: RoomRecord[]): Promise<RoomRecord[]> {
    const has = (value: unknown) => typeof value === 'string' && normalise(value).includes(keyword);
    switch (type) {
      case 'roomName':
        return rooms.filter((r) => has(r.name));
      case 'roomTags':
        return rooms.filter((r) => r.roomTags.some(has));
      case 'roomPrefTags':
        return rooms.filter((r) => {
          const tags = ownValue(r.memberState, userId)?.pref?.tags;
          return Array.isArray(tags) && tags.some(has);
        });
      case 'roomPrefFolder':
        return rooms.filter((r) => has(ownValue(r.memberState, userId)?.pref?.folder));
      case 'roomMember': {
        const others = [...new Set(rooms.flatMap((r) => r.members))].filter((m) => m !== userId);
        const users = await this.store.getUsers(appId, others);
        const matching = new Set(others.filter((id, i) => has(id) || has(users[i]?.nickname)));
        return rooms.filter((r) => r.members.some((m) => matching.has(m)));
      }
      default:
        return [];
    }
  }
}

/** The request bodies this service validates (routes reference them for the protocol reference). */
export const searchInputs = { search: searchSchema };
