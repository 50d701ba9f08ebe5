import { z } from 'zod';
import { ownValue } from './own.js';
import type { Bus } from '../bus/bus.js';
import { userTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { InvitationRecord, RoomRecord } from './models.js';
import { asUser, authorize, isSuperuser } from './permissions.js';
import type { Presenter } from './presenter.js';
import type { SystemMessages } from './messages.js';
import { requireRoom } from './lookup.js';
import { parseInput } from './validate.js';
import type { ClientView } from './views.js';

const cancelSchema = z.looseObject({ invitees: z.array(z.string().trim().min(1).max(128)).min(1).max(1000), systemMessage: z.boolean().optional() });

const iso = (ms: number) => new Date(ms).toISOString();

/** IMKIT's Invitation on the wire. */
type InvitationView = Record<string, unknown> & { invitee: string };

/**
 * Room invitations (`invitationRequired`): invitees are not members until they join; each gets an
 * `invitation` event, and a `cancelInvitation` event when it is withdrawn. A room created with
 * `invitationRequired` can be joined only with an invitation, and adding members to it invites them.
 */
export class InvitationService {
  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private system: SystemMessages,
  ) {}

  /** Invites users (not yet members) to the room and tells each of them. */
  async invite(actor: Actor, room: RoomRecord, invitees: readonly string[]): Promise<void> {
    const inviter = actor.kind === 'user' ? actor.userId : undefined;
    const fresh = invitees.filter((u) => !ownValue(room.memberState, u) && u !== inviter);
    if (fresh.length === 0) return;
    const now = Date.now();
    const records = fresh.map((invitee) => ({ room: room.id, invitee, inviter, createdAt: now }));
    await this.store.putInvitations(actor.app.id, records);
    const views = await this.views(actor.app.id, records, room);
    for (const view of views) this.bus.publish(userTopic(actor.app.id, view.invitee), { kind: 'deliver', event: 'invitation', payload: view });
  }

  /** `join` calls this: without an invitation an invitation-only room refuses; joining accepts it (true when invited). */
  async admit(appId: string, room: RoomRecord, userId: string): Promise<boolean> {
    const gone = await this.store.deleteInvitations(appId, room.id, [userId]);
    if (room.invitationRequired && gone.length === 0) {
      throw Errors.invitationRequired();
    }
    return gone.length > 0;
  }

  /** `GET /rooms/invitations`: my pending invitations. */
  async mine(actor: Actor) {
    const me = asUser(actor, 'me.read');
    return this.page(actor.app.id, await this.store.listInvitations(actor.app.id, { invitee: me.userId }));
  }

  /** `GET /rooms/:id/invitations`: the room's pending invitations (members). */
  async ofRoom(actor: Actor, roomId: string) {
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'rooms.read', room);
    return this.page(actor.app.id, await this.store.listInvitations(actor.app.id, { room: roomId }), room);
  }

  /** `DELETE /rooms/:id/invitations`: the invitee declines. */
  async decline(actor: Actor, roomId: string) {
    const me = asUser(actor, 'me.read');
    const gone = await this.store.deleteInvitations(actor.app.id, roomId, [me.userId]);
    if (gone.length === 0) throw Errors.invitationNotFound(roomId);
    this.bus.publish(userTopic(actor.app.id, me.userId), { kind: 'deliver', event: 'cancelInvitation', payload: { room: roomId } });
    return this.page(actor.app.id, await this.store.listInvitations(actor.app.id, { invitee: me.userId }));
  }

  /**
   * `POST /rooms/:id/delete/invitations {invitees}` (and the deprecated single
   * `DELETE /rooms/:id/invitations/:invitee`): a member withdraws invitations.
   */
  async cancel(actor: Actor, roomId: string, body: unknown) {
    const input = parseInput(cancelSchema, body);
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'members.add', room);
    const me = actor.kind === 'user' ? actor.userId : undefined;
    const targets = (await this.store.listInvitations(actor.app.id, { room: roomId })).filter((p) => input.invitees.includes(p.invitee));
    // Only the inviter or a superuser may withdraw someone else's invitation.
    if (me && !isSuperuser(actor, room) && targets.some((p) => p.inviter !== me)) {
      throw Errors.notInviter();
    }
    const gone = await this.store.deleteInvitations(actor.app.id, roomId, targets.map((p) => p.invitee));
    for (const g of gone) this.bus.publish(userTopic(actor.app.id, g.invitee), { kind: 'deliver', event: 'cancelInvitation', payload: { room: roomId } });
    if (gone.length > 0 && (input.systemMessage ?? room.systemMessage)) {
      const invitees = await this.present.clients(actor.app.id, gone.map((g) => g.invitee));
      await this.system.post(actor.app.id, room, me, 'cancelInvitations', invitees.map((c) => c.nickname).join(', '), { extra: { invitees } });
    }
    return this.page(actor.app.id, await this.store.listInvitations(actor.app.id, { room: roomId }), room);
  }

  /** A deleted room's invitations go with it. */
  async roomDeleted(appId: string, roomId: string): Promise<void> {
    const gone = await this.store.deleteInvitations(appId, roomId);
    for (const g of gone) this.bus.publish(userTopic(appId, g.invitee), { kind: 'deliver', event: 'cancelInvitation', payload: { room: roomId } });
  }

  private async page(appId: string, records: InvitationRecord[], room?: RoomRecord) {
    const data = await this.views(appId, records, room);
    return { totalCount: data.length, data };
  }

  /** IMKIT's Invitation: `room` and `inviter` populated (the Flutter SDK reads them as objects). */
  private async views(appId: string, records: InvitationRecord[], known?: RoomRecord): Promise<InvitationView[]> {
    const roomIds = [...new Set(records.map((r) => r.room))];
    const rooms = known ? [known] : (await this.store.getRooms(appId, roomIds)).filter((r): r is RoomRecord => r !== undefined);
    const roomViews = new Map(await Promise.all(rooms.map(async (r) => [r.id, await this.present.room(appId, r)] as const)));
    const people = [...new Set(records.flatMap((r) => (r.inviter ? [r.inviter, r.invitee] : [r.invitee])))];
    const clients = new Map((await this.present.clients(appId, people)).map((c): [string, ClientView] => [c.id, c]));
    return records.flatMap((r) => {
      const room = roomViews.get(r.room);
      if (!room) return [];
      return [{
        room,
        inviter: r.inviter ? clients.get(r.inviter) : null,
        invitee: r.invitee,
        inviteeInfo: clients.get(r.invitee),
        createdAt: iso(r.createdAt),
        createdAtMS: r.createdAt,
        createdTimeMS: r.createdAt,
        updatedAt: iso(r.createdAt),
        updatedTimeMS: r.createdAt,
      }];
    });
  }
}

/** The request bodies this service validates (routes reference them for the protocol reference). */
export const invitationInputs = { cancel: cancelSchema };
