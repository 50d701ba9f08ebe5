import { z } from 'zod';
import { ownValue } from './own.js';
import type { Store } from '../store/store.js';
import type { Actor } from './identity.js';
import type { MessageRecord, RoomRecord } from './models.js';
import { asUser, isBanned, isSuperuser } from './permissions.js';
import type { Presenter } from './presenter.js';
import { normalise, searchableText, type SearchIndex } from './search-index.js';
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

const FILE_TYPES = new Set(['file', 'image', 'video', 'audio']);
/** A room this node has not indexed yet is back-filled with this many of its latest messages. */
const BACKFILL = 2_000;
/** Messages read per store call while catching a room up. */
const PAGE = 500;

/**
 * Keyword search over the caller's own rooms: message text through the inverted index
 * (`SearchIndex`), room names, members, tags and the caller's room preferences from the
 * caller's room list. Every requested type is answered with an array (the Vue SDK iterates each).
 */
export class SearchService {
  constructor(
    private store: Store,
    private present: Presenter,
    private index: SearchIndex,
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
        await this.catchUp(actor.app.id, byId.values());
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
   * Brings the index up to each room's last message: what other nodes stored, or this node before
   * a restart. Reads only messages newer than the room's watermark (a back-fill of the latest
   * BACKFILL the first time), so a search never scans history.
   */
  private async catchUp(appId: string, rooms: Iterable<RoomRecord>): Promise<void> {
    for (const room of rooms) {
      const mark = this.index.watermark(appId, room.id);
      if (room.lastMessageId === undefined || mark === room.lastMessageId) continue;
      let from = mark;
      let read = 0;
      if (from !== undefined) {
        // Newer than the watermark, page by page, up to the room's last message.
        for (;;) {
          const page = await this.store.listMessages(appId, room.id, { anchor: from, direction: 'newer', includeAnchor: false, limit: PAGE });
          if (!page) {
            from = undefined; // the watermark message was deleted: back-fill instead
            break;
          }
          for (const m of page) this.index.add(appId, m);
          read += page.length;
          if (page.length < PAGE) break;
          if (read >= BACKFILL) {
            from = undefined; // far behind: take the latest instead of the oldest of the gap
            break;
          }
          from = page.at(-1)!.id;
        }
      }
      if (from === undefined) {
        const latest = await this.store.listMessages(appId, room.id, { direction: 'older', includeAnchor: false, limit: BACKFILL });
        // Oldest first, so the index's insertion order stays send order (newest hits first).
        for (const m of [...(latest ?? [])].reverse()) this.index.add(appId, m);
      }
      this.index.setWatermark(appId, room.id, room.lastMessageId);
    }
  }

  /** room id → matching message ids (newest first), confirmed against the stored messages and the reader's view. */
  private async messageHits(actor: Actor, userId: string, keyword: string, rooms: Map<string, RoomRecord>, limit: number, filesOnly: boolean) {
    const hits = new Map<string, string[]>();
    // Over-fetch a little: some candidates are false positives or no longer visible.
    const candidates = this.index.candidates(actor.app.id, keyword, new Set(rooms.keys()), limit * 4);
    const deleted = new Map<string, Set<string>>();
    let count = 0;
    for (const { id, room } of candidates) {
      if (count >= limit) break;
      const message = await this.store.getMessage(actor.app.id, id);
      if (!message || message.room !== room || !normalise(searchableText(message)).includes(keyword)) continue;
      if (filesOnly && !FILE_TYPES.has(message.messageType)) continue;
      if (!(await this.visible(actor, userId, rooms.get(room)!, message, deleted))) continue;
      let list = hits.get(room);
      if (!list) hits.set(room, (list = []));
      list.push(id);
      count++;
    }
    return hits;
  }

  /** The reader's own deletions and superuser hiding apply to search as they do to history. */
  private async visible(actor: Actor, userId: string, room: RoomRecord, message: MessageRecord, cache: Map<string, Set<string>>): Promise<boolean> {
    const clearedAt = ownValue(room.memberState, userId)?.clearedAt;
    if (clearedAt !== undefined && message.createdAt <= clearedAt) return false;
    const hidden = message.fields.isHidden === true || (message.sender !== undefined && room.hiddenSenders?.includes(message.sender));
    if (hidden && !isSuperuser(actor, room)) return false;
    let deleted = cache.get(room.id);
    if (!deleted) cache.set(room.id, (deleted = new Set(await this.store.listUserDeletedMessages(actor.app.id, userId, room.id))));
    return !deleted.has(message.id);
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
