import { z } from 'zod';
import { ownValue, setOwn } from './own.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { RoomRecord, UserRecord } from './models.js';
import { authorize } from './permissions.js';
import type { GroupMembership, RoomService } from './rooms.js';
import { newId } from './secrets.js';
import { parseInput } from './validate.js';
import { clientView } from './views.js';

const id = z.string().trim().min(1).max(128);
/** api-doc user/user-groups/create-group.md: `{_id?, nickname, avatarUrl?, members?}`. */
const groupSchema = z.looseObject({
  _id: id.optional(),
  nickname: z.string().min(1).max(256),
  avatarUrl: z.string().max(2048).optional(),
  members: z.array(id).max(10_000).optional(),
});

/** Adds `users` to the room as members through `group` (pure: runs inside `updateRoom`). */
export function addThroughGroup(r: RoomRecord, group: string, users: readonly string[], now: number): string[] {
  const added: string[] = [];
  for (const u of users) {
    const state = ownValue(r.memberState, u);
    if (!state) {
      r.members.push(u);
      setOwn(r.memberState, u, { joinedAt: now, viaGroups: [group] });
      added.push(u);
    } else if (!state.viaGroups) {
      // In the room in person already: remember the group too, and that they stay without it.
      state.viaGroups = [group];
      state.direct = true;
    } else if (!state.viaGroups.includes(group)) {
      state.viaGroups.push(group);
    }
  }
  return added;
}

/** Takes `group` off `users` (all members when absent); removes those left with no reason to stay. */
export function removeThroughGroup(r: RoomRecord, group: string, users?: readonly string[]): string[] {
  const removed: string[] = [];
  for (const u of users ?? [...r.members]) {
    const state = ownValue(r.memberState, u);
    if (!state?.viaGroups?.includes(group)) continue;
    state.viaGroups = state.viaGroups.filter((g) => g !== group);
    if (state.viaGroups.length > 0) continue;
    if (state.direct) {
      delete state.viaGroups;
      delete state.direct;
      continue;
    }
    delete r.memberState[u];
    removed.push(u);
  }
  if (removed.length > 0) {
    const gone = new Set(removed);
    r.members = r.members.filter((m) => !gone.has(m));
    r.managers = r.managers.filter((m) => !gone.has(m));
  }
  return removed;
}

/**
 * User groups (`/admin/groups`): a group is a virtual client; put into a room's members it
 * brings its users in (each remembers the groups that brought it), so they read, send and
 * receive like any member. Changing a group's members changes every room it is in.
 */
export class GroupService implements GroupMembership {
  constructor(
    private store: Store,
    private rooms: RoomService,
  ) {}

  /** `POST /admin/groups`: create or update. */
  async upsert(actor: Actor, body: unknown) {
    authorize(actor, 'users.manage');
    const input = parseInput(groupSchema, body);
    const groupId = input._id ?? newId();
    const members = [...new Set(input.members ?? [])];
    const existing = await this.store.getUser(actor.app.id, groupId);
    if (existing && !existing.group) throw Errors.clientExists(groupId);
    const users = await this.store.getUsers(actor.app.id, members);
    const missing = members.filter((_, i) => !users[i]);
    if (missing.length > 0) throw Errors.notFound('CLIENT', missing.join(', '));
    if (users.some((u) => u?.group)) throw Errors.invalidInput('members: a group cannot contain groups');
    const now = Date.now();
    const record: UserRecord = {
      ...(existing ?? { custom: {}, createdAt: now }),
      id: groupId,
      nickname: input.nickname,
      avatarUrl: input.avatarUrl ?? existing?.avatarUrl,
      group: { members },
      updatedAt: now,
    };
    await this.store.putUser(actor.app.id, record);
    const before = new Set(existing?.group?.members ?? []);
    const joined = members.filter((m) => !before.has(m));
    const left = [...before].filter((m) => !members.includes(m));
    if (joined.length > 0 || left.length > 0) {
      for (const roomId of await this.store.userRoomIds(actor.app.id, groupId)) {
        await this.rooms.editMembers(actor, roomId, (r) => ({
          added: r.roomType === 'direct' ? [] : addThroughGroup(r, groupId, joined, now),
          removed: removeThroughGroup(r, groupId, left),
        }));
      }
    }
    return groupView(record);
  }

  /** `GET /admin/groups?limit=`: the groups, oldest first. */
  async list(actor: Actor, limit: number) {
    authorize(actor, 'users.manage');
    const { total, users } = await this.store.listGroups(actor.app.id, limit);
    return { totalCount: total, data: users.map(groupView) };
  }

  /** Groups among ids that just became members of a room bring their users in. */
  async roomGained(actor: Actor, roomId: string, memberIds: readonly string[]): Promise<void> {
    for (const group of await this.groupsAmong(actor.app.id, memberIds)) {
      const now = Date.now();
      // A direct room keeps its two members: a group there stands for itself only.
      await this.rooms.editMembers(actor, roomId, (r) => ({
        added: r.roomType === 'direct' ? [] : addThroughGroup(r, group.id, group.group!.members, now),
        removed: [],
      }));
    }
  }

  /** Groups among ids leaving a room take the users who were there only through them. */
  async roomLost(actor: Actor, roomId: string, memberIds: readonly string[]): Promise<void> {
    for (const group of await this.groupsAmong(actor.app.id, memberIds)) {
      await this.rooms.editMembers(actor, roomId, (r) => ({ added: [], removed: removeThroughGroup(r, group.id) }));
    }
  }

  private async groupsAmong(appId: string, ids: readonly string[]): Promise<UserRecord[]> {
    if (ids.length === 0) return [];
    return (await this.store.getUsers(appId, ids)).filter((u): u is UserRecord => u?.group !== undefined);
  }
}

function groupView(group: UserRecord) {
  const { mute: _mute, ...view } = clientView(group, group.id);
  return { ...view, members: group.group?.members ?? [] };
}

/** The request bodies this service validates (routes reference them for the protocol reference). */
export const groupInputs = { upsert: groupSchema };
