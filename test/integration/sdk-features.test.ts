import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';
import { collect, connect, decodeB64, once, signedIn, until } from '../helpers/sockets.js';

/**
 * User-facing features the official SDKs call, with their socket events. Request bodies copy
 * the Vue SDK (FUNTEKco/imkit-vue-sdk-nuxt `dist/imkit-vue-sdk.js`: `updatePref`, `deletePref`,
 * `updateRoomPrefs`, `sendReaction`, `deleteReaction`, `hideMessage`,
 * `hideMessagesFromUserInRoom`, `removeMembers`) and api-doc (update-member-property.md).
 */
describe.each(TRANSPORTS)('SDK features over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const as = (who: string) => user(t.base, app, tokens[who]!);

  beforeAll(async () => {
    t = await startTestServer(transport);
    app = await t.createApp();
    for (const id of ['alice', 'bob', 'carol']) tokens[id] = await t.createUser(app, id, id.toUpperCase());
    await admin(t.base, app).post('/rooms', { _id: 'team', name: 'Team', members: ['alice', 'bob', 'carol'], owner: 'alice' });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(() => t.close());

  const socketOf = (who: string): Promise<Socket> => signedIn(t.base, tokens[who]!, app.clientKey, open);

  /**
   * The Flutter SDK's socket (imkit-flutter-sdk lib/services/network/socket/im_socket_client.dart):
   * conf {encoding: base64}, then auth2 [token, headers]; every payload arrives base64(JSON).
   */
  async function flutterSocketOf(who: string): Promise<Socket> {
    const s = connect(t.base);
    open.push(s);
    await once(s, 'connect');
    await s.timeout(5000).emitWithAck('conf', { encoding: 'base64' });
    const ack = await s.timeout(5000).emitWithAck('auth2', tokens[who], { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] });
    expect(decodeB64(ack)).toMatchObject({ RC: 0 });
    return s;
  }

  it('user prefs: POST/DELETE /me/pref/:key reach the user\'s other devices as myPrefChange / myPrefDelete', async () => {
    const other = await socketOf('alice');
    const bobSeen = collect((await socketOf('bob')), 'myPrefChange');
    const changed = once<unknown>(other, 'myPrefChange');
    // Vue: updateFolder posts the folder list to /me/pref/folders-meta.
    const folders = [{ key: 'work', name: 'Work' }];
    const put = await as('alice').post('/me/pref/folders-meta', folders);
    expect(put.body.result).toEqual({ key: 'folders-meta', data: folders });
    expect((await changed)[0]).toEqual({ key: 'folders-meta', data: folders });
    await as('alice').post('/me/pref/work', { children: [{ id: 'team', type: 'room' }] });
    const list = await as('alice').get('/me/pref');
    expect(list.body.result).toEqual(expect.arrayContaining([{ key: 'folders-meta', data: folders }, { key: 'work', data: { children: [{ id: 'team', type: 'room' }] } }]));
    expect((await as('alice').get('/me/pref?key=work')).body.result).toEqual({ key: 'work', data: { children: [{ id: 'team', type: 'room' }] } });
    expect((await as('alice').get('/me/prefs')).body.result).toMatchObject({ work: { children: [{ id: 'team', type: 'room' }] } });
    const deleted = once<unknown>(other, 'myPrefDelete');
    expect((await as('alice').del('/me/pref/work')).body.result).toEqual({});
    expect((await deleted)[0]).toBe('work');
    expect(code(await as('alice').get('/me/pref?key=work'))).toBe('PREF_NOT_FOUND');
    expect(bobSeen).toEqual([]);
    expect((await as('bob').get('/me/pref')).body.result).toEqual([]);
  });

  it('room prefs: POST /roomPrefs/:room merges, answers {room, …}, sends roomPref to the user and shows as room.pref to them only', async () => {
    const other = await socketOf('alice');
    const flutter = await flutterSocketOf('alice');
    const bobSeen = collect(await socketOf('bob'), 'roomPref');
    const arrived = once<Record<string, unknown>>(other, 'roomPref');
    const arrivedB64 = once<string>(flutter, 'roomPref');
    // Vue: updateRoomPrefs({roomId, prefs: {sticky: true}}) → POST /roomPrefs/:room
    const set = await as('alice').post('/roomPrefs/team', { sticky: true });
    expect(set.body.result).toEqual({ room: 'team', sticky: true });
    expect((await arrived)[0]).toEqual({ room: 'team', sticky: true });
    expect(decodeB64((await arrivedB64)[0])).toEqual({ room: 'team', sticky: true });
    await as('alice').post('/roomPrefs/team', { hidden: false, tags: ['vip'], tagColors: { vip: '#ff0' } });
    expect((await as('alice').get('/rooms/team')).body.result.pref).toEqual({ sticky: true, hidden: false, tags: ['vip'], tagColors: { vip: '#ff0' } });
    expect((await as('bob').get('/rooms/team')).body.result.pref).toEqual({});
    const rooms = await as('alice').get('/rooms');
    expect(rooms.body.result.data.find((r: { _id: string }) => r._id === 'team').pref).toMatchObject({ sticky: true });
    const unset = await as('alice').del('/roomPrefs/team/sticky');
    expect(unset.body.result).toEqual({ room: 'team', hidden: false, tags: ['vip'], tagColors: { vip: '#ff0' } });
    expect((await as('alice').get('/roomPrefs')).body.result).toEqual({ totalCount: 1, data: [unset.body.result] });
    expect(code(await as('alice').post('/roomPrefs/team', { sticky: 'yes' }))).toBe('INVALID_INPUT');
    await admin(t.base, app).post('/rooms', { _id: 'elsewhere', members: ['bob'] });
    expect(code(await as('alice').post('/roomPrefs/elsewhere', { sticky: true }))).toBe('NOT_ROOM_MEMBER');
    expect(bobSeen).toEqual([]);
  });

  it('reactions: POST and DELETE /messages/:id/reaction re-deliver the message with reactions and reactionCount', async () => {
    const bob = await socketOf('bob');
    const delivered = once<Record<string, unknown>>(bob, 'chat message');
    const sent = (await as('alice').post('/rooms/team/message', { roomId: 'team', messageType: 'text', message: 'vote', reply: null, mentions: [] })).body.result;
    await delivered;
    const updated = once<Record<string, unknown>>(bob, 'chat message');
    const like = await as('carol').post(`/messages/${sent._id}/reaction`, { reaction: 'like' });
    expect(like.body.result).toMatchObject({ _id: sent._id, reactions: [{ client: 'carol', reaction: 'like' }], reactionCount: 1 });
    expect((await updated)[0]).toMatchObject({ _id: sent._id, message: 'vote', reactions: [{ client: 'carol', reaction: 'like' }], reactionCount: 1 });
    await as('bob').post(`/messages/${sent._id}/reaction`, { reaction: 'joy' });
    const again = await as('carol').post(`/messages/${sent._id}/reaction`, { reaction: 'like' });
    expect(again.body.result.reactionCount).toBe(2);
    // Vue: deleteReaction → DELETE /messages/:id/reaction with params {reaction}
    const removed = await as('carol').del(`/messages/${sent._id}/reaction?reaction=like`);
    expect(removed.body.result).toMatchObject({ reactions: [{ client: 'bob', reaction: 'joy' }], reactionCount: 1 });
    const history = await as('alice').get('/rooms/team/messages/v3?limit=5');
    expect(history.body.result.data.find((m: { _id: string }) => m._id === sent._id)).toMatchObject({ reactionCount: 1 });
    await admin(t.base, app).post('/rooms', { _id: 'private', members: ['alice'] });
    const privateMessage = (await as('alice').post('/rooms/private/message', { message: 'secret' })).body.result;
    expect(code(await as('carol').post(`/messages/${privateMessage._id}/reaction`, { reaction: 'like' }))).toBe('NOT_ROOM_MEMBER');
    expect(code(await as('carol').post(`/messages/${sent._id}/reaction`, {}))).toBe('INVALID_INPUT');
  });

  it('delete for me: gone from my history only, userDeleteMessages to my devices; all-in-room clears what was sent so far', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'chat', members: ['alice', 'bob'] });
    const ids: string[] = [];
    for (const text of ['one', 'two', 'three']) ids.push((await as('alice').post('/rooms/chat/message', { message: text })).body.result._id);
    const device = await socketOf('bob');
    const aliceSeen = collect(await socketOf('alice'), 'userDeleteMessages');
    const told = once<Record<string, unknown>>(device, 'userDeleteMessages');
    // Vue: hideMessage({roomId, messageIds}) → POST /messages/user-delete {room, messages}
    const del = await as('bob').post('/messages/user-delete', { room: 'chat', messages: [ids[1]] });
    expect(del.status).toBe(200);
    expect((await told)[0]).toEqual({ room: 'chat', messages: [ids[1]], isUserDeleteAllMessagesInRoom: false });
    const bobHistory = (await as('bob').get('/rooms/chat/messages/v3?limit=10')).body.result;
    expect(bobHistory.data.map((m: { message: string }) => m.message)).toEqual(['three', 'one']);
    expect(bobHistory.userDeletedIDs).toEqual([ids[1]]);
    expect((await as('alice').get('/rooms/chat/messages/v3?limit=10')).body.result.data).toHaveLength(3);
    expect((await as('bob').get('/messages/user-delete?room=chat')).body.result).toEqual({ totalCount: 1, data: [{ message: ids[1] }] });
    // Vue: hideMessagesFromUserInRoom(room) → POST /messages/user-delete/all-in-room {room}
    const all = once<Record<string, unknown>>(device, 'userDeleteMessages');
    expect((await as('bob').post('/messages/user-delete/all-in-room', { room: 'chat' })).status).toBe(200);
    const clearedBy = Date.now();
    await until(() => Date.now() > clearedBy); // "all so far" is by send time (ms)
    expect((await all)[0]).toMatchObject({ room: 'chat', isUserDeleteAllMessagesInRoom: true });
    expect((await as('bob').get('/rooms/chat/messages/v3?limit=10')).body.result.data).toEqual([]);
    const later = (await as('alice').post('/rooms/chat/message', { message: 'four' })).body.result;
    expect((await as('bob').get('/rooms/chat/messages/v3?limit=10')).body.result.data.map((m: { _id: string }) => m._id)).toEqual([later._id]);
    expect((await as('alice').get('/rooms/chat/messages/v3?limit=10')).body.result.data).toHaveLength(4);
    expect(aliceSeen).toEqual([]);
    expect(code(await as('carol').post('/messages/user-delete', { room: 'chat', messages: [ids[0]] }))).toBe('NOT_ROOM_MEMBER');
  });

  it('hide: a superuser hides a message from the other members\' history', async () => {
    const m = (await as('bob').post('/rooms/team/message', { message: 'spam' })).body.result;
    expect(code(await as('bob').post(`/messages/${m._id}/hidden`))).toBe('NOT_ROOM_SUPERUSER');
    const hidden = await as('alice').post(`/messages/${m._id}/hidden`);
    expect(hidden.body.result).toMatchObject({ _id: m._id, isHidden: true });
    const ids = async (who: string) => (await as(who).get('/rooms/team/messages/v3?limit=50')).body.result.data.map((x: { _id: string }) => x._id);
    expect(await ids('carol')).not.toContain(m._id);
    expect(await ids('alice')).toContain(m._id);
    await as('alice').del(`/messages/${m._id}/hidden`);
    expect(await ids('carol')).toContain(m._id);
    // Everything a sender posted in the room (api-doc OLD message/Hide-messages-from-a-sender.md: {room, sender}).
    const more = (await as('bob').post('/rooms/team/message', { message: 'more spam' })).body.result._id;
    expect(code(await as('carol').post('/messages/hide-by-sender-in-room', { room: 'team', sender: 'bob' }))).toBe('NOT_ROOM_SUPERUSER');
    expect((await as('alice').post('/messages/hide-by-sender-in-room', { room: 'team', sender: 'bob' })).body.result).toMatchObject({ hidden: true, hiddenSenders: ['bob'] });
    expect(await ids('carol')).not.toContain(m._id);
    expect(await ids('carol')).not.toContain(more);
    expect(await ids('alice')).toContain(more);
    await as('alice').post('/messages/unhide-by-sender-in-room', { room: 'team', sender: 'bob' });
    expect(await ids('carol')).toContain(more);
  });

  it('member properties: any custom property, shown in memberProperties; role still makes admins', async () => {
    // api-doc room/room-members/update-member-property.md: {property, value}
    const set = await as('bob').put('/rooms/team/member/bob', { property: 'score', value: 100 });
    expect(set.status).toBe(200);
    const props = (r: { body: { result: { memberProperties: { client: string }[] } } }, who: string) => r.body.result.memberProperties.find((p) => p.client === who);
    expect(props(set, 'bob')).toMatchObject({ client: 'bob', score: 100, role: 'member' });
    expect(code(await as('bob').put('/rooms/team/member/carol', { property: 'score', value: 1 }))).toBe('NOT_MESSAGE_SENDER');
    const byOwner = await as('alice').put('/rooms/team/member/carol', { property: 'location', value: { city: 'Taipei' } });
    expect(props(byOwner, 'carol')).toMatchObject({ location: { city: 'Taipei' } });
    expect(code(await as('bob').put('/rooms/team/member/bob', { property: 'role', value: 'admin' }))).toBe('NOT_ROOM_SUPERUSER');
    expect(code(await as('alice').put('/rooms/team/member/bob', { property: 'lastRead', value: 'x' }))).toBe('INVALID_INPUT');
    const promoted = await as('alice').put('/rooms/team/member/bob', { property: 'role', value: 'admin' });
    expect(props(promoted, 'bob')).toMatchObject({ role: 'admin', score: 100 });
    await as('alice').put('/rooms/team/member/bob', { property: 'role', value: 'member' });
  });

  it('kick notices are deleteMember (one per member, extra.members), as both SDKs render them', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'kick', members: ['alice', 'bob', 'carol'], owner: 'alice' });
    const bob = await socketOf('bob');
    const notice = once<Record<string, unknown>>(bob, 'chat message');
    // Vue: removeMembers → POST /rooms/:id/delete/members {systemMessage: true, members}
    await as('alice').post('/rooms/kick/delete/members', { systemMessage: true, members: ['carol'] });
    expect((await notice)[0]).toMatchObject({ messageType: 'deleteMember', message: 'CAROL', extra: { members: [{ _id: 'carol', nickname: 'CAROL' }] }, sender: { id: 'alice' } });
  });

  it('POST /search: every requested type answered, messages only from the caller\'s rooms, via the index', async () => {
    const adm = admin(t.base, app);
    await adm.post('/rooms', { _id: 'design', name: 'Design Review', members: ['alice', 'bob'], roomTags: ['work'] });
    await adm.post('/rooms', { _id: 'secret', name: 'Secret Design', members: ['carol'] });
    const hit = (await as('alice').post('/rooms/design/message', { message: 'The Launch plan is ready' })).body.result._id;
    await as('alice').post('/rooms/design/message', { message: 'unrelated' });
    const cjk = (await as('bob').post('/rooms/design/message', { message: '明天開會討論設計' })).body.result._id;
    const file = (await as('bob').post('/rooms/design/message', { messageType: 'file', originalUrl: 'https://cdn.example/p.pdf', extra: { fileName: 'launch-budget.pdf' } })).body.result._id;
    await as('carol').post('/rooms/secret/message', { message: 'launch codes' });
    await as('alice').post('/roomPrefs/design', { folder: 'Projects', tags: ['urgent'] });
    // Vue: searchRoomsByKeyword → POST /search {type: [all types], keyword}
    const types = ['messages', 'roomName', 'roomMember', 'roomPrefTags', 'roomPrefFolder', 'roomTags', 'files'];
    const res = await as('alice').post('/search', { type: types, keyword: 'launch' });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.result).sort()).toEqual([...types].sort());
    expect(res.body.result.messages).toHaveLength(1);
    expect(res.body.result.messages[0].room).toMatchObject({ _id: 'design', members: expect.arrayContaining([expect.objectContaining({ id: 'bob' })]) });
    expect(res.body.result.messages[0].messages.sort()).toEqual([hit, file].sort());
    expect(res.body.result.files[0].messages).toEqual([file]);
    const ids = (type: string, body: Record<string, unknown>) => as('alice').post('/search', { type: [type], ...body }).then((r) => r.body.result[type].map((x: { _id: string }) => x._id));
    expect(await ids('roomName', { keyword: 'design' })).toEqual(['design']);
    expect(await ids('roomMember', { keyword: 'BOB' })).toEqual(expect.arrayContaining(['design', 'team']));
    expect(await ids('roomTags', { keyword: 'wor' })).toEqual(['design']);
    expect(await ids('roomPrefFolder', { keyword: 'project' })).toEqual(['design']);
    expect(await ids('roomPrefTags', { keyword: 'urgent' })).toEqual(['design']);
    const inRoom = await as('bob').post('/search', { type: ['messages'], keyword: '設計', room: 'design' });
    expect(inRoom.body.result.messages).toEqual([expect.objectContaining({ messages: [cjk] })]);
    expect((await as('bob').post('/search', { type: ['messages'], keyword: 'plan is r' })).body.result.messages[0].messages).toEqual([hit]);
    expect((await as('bob').post('/search', { type: ['messages'], keyword: 'plan ready' })).body.result.messages).toEqual([]);
    // Edits and deletions are followed; carol's room never shows up for alice.
    await as('alice').post('/rooms/design/message', { _id: hit, message: 'postponed' });
    expect((await as('alice').post('/search', { type: ['messages'], keyword: 'launch' })).body.result.messages[0].messages).toEqual([file]);
    expect((await adm.del(`/rooms/design/messages/${file}`)).status).toBe(200);
    expect((await as('alice').post('/search', { type: ['messages'], keyword: 'launch' })).body.result.messages).toEqual([]);
    expect((await as('carol').post('/search', { type: ['messages'], keyword: 'launch' })).body.result.messages[0].room._id).toBe('secret');
    expect(code(await as('alice').post('/search', { type: ['everything'], keyword: 'x' }))).toBe('INVALID_INPUT');
    expect(code(await as('alice').post('/search', { type: ['messages'] }))).toBe('INVALID_INPUT');
  });

  it('POST /search finds what the reader\'s history shows: not deleted for them, hidden or from senders they blocked; never a recalled text', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'views', members: ['alice', 'bob', 'carol'], owner: 'alice' });
    const send = async (who: string, message: string) => (await as(who).post('/rooms/views/message', { message })).body.result._id as string;
    const c1 = await send('carol', 'quartz one');
    const b1 = await send('bob', 'quartz two');
    const b2 = await send('bob', 'quartz three');
    const a1 = await send('alice', 'quartz four');
    const c2 = await send('carol', 'quartz 機密');
    // Flutter: recallMessage (lib/services/data/managers/im_message_data_manager.dart) → POST /rooms/:id/message {_id, messageType: 'recall'}
    expect((await as('carol').post('/rooms/views/message', { _id: c2, messageType: 'recall' })).body.result.messageType).toBe('recall');
    expect((await as('alice').post(`/messages/${b2}/hidden`)).status).toBe(200);
    // Vue: hideMessage({roomId, messageIds}) → POST /messages/user-delete {room, messages}
    expect((await as('bob').post('/messages/user-delete', { room: 'views', messages: [a1] })).status).toBe(200);
    expect((await as('bob').post('/blockStatus/my/carol')).status).toBe(200);
    const found = async (who: string, keyword: string, limit?: number) =>
      (await as(who).post('/search', { type: ['messages'], keyword, room: 'views', limit })).body.result.messages.flatMap((h: { messages: string[] }) => h.messages);
    expect(await found('alice', 'quartz')).toEqual([a1, b2, b1, c1]);
    expect(await found('bob', 'quartz')).toEqual([b1]);
    // The hits bob may not see are skipped, not counted: a limit of one still finds his.
    expect(await found('bob', 'quartz', 1)).toEqual([b1]);
    expect(await found('carol', 'quartz')).toEqual([a1, b1, c1]);
    expect(await found('carol', '機密')).toEqual([]);
    await as('bob').del('/blockStatus/my/carol');
    expect(await found('bob', 'quartz')).toEqual([b1, c1]);
  });

  it('invitations: invitationRequired invites instead of adding; invitation / cancelInvitation events; join accepts', async () => {
    const bob = await flutterSocketOf('bob');
    const carol = await flutterSocketOf('carol');
    const invited = once<string>(bob, 'invitation');
    // Flutter: IMRoomRequest.createGroupRoom → POST /rooms/createAndJoin
    // {_id, roomType:"group", invitee:[…], name, systemMessage:true, invitationRequired:true}
    const created = await as('alice').post('/rooms/createAndJoin', {
      _id: 'club', roomType: 'group', invitee: ['bob', 'carol'], name: 'Club', systemMessage: true, invitationRequired: true,
    });
    expect(created.status).toBe(200);
    expect(created.body.result).toMatchObject({ _id: 'club', invitationRequired: true, members: [expect.objectContaining({ id: 'alice' })] });
    const invitation = decodeB64((await invited)[0]);
    // Flutter's IMInvitation reads room (object), inviter (object), createdTimeMS, updatedTimeMS.
    expect(invitation).toMatchObject({ room: { _id: 'club', name: 'Club' }, inviter: { id: 'alice' }, invitee: 'bob', createdTimeMS: expect.any(Number), updatedTimeMS: expect.any(Number) });
    expect(code(await as('bob').get('/rooms/club/messages/v3'))).toBe('NOT_ROOM_MEMBER');
    expect((await as('bob').get('/rooms/invitations')).body.result).toMatchObject({ totalCount: 1, data: [{ room: { _id: 'club' } }] });
    expect((await as('alice').get('/rooms/club/invitations')).body.result.data.map((i: { invitee: string }) => i.invitee)).toEqual(['bob', 'carol']);
    // Joining accepts the invitation (Flutter: joinRoom {systemMessage: true}).
    const joined = await as('bob').post('/rooms/club/join', { systemMessage: true });
    expect(joined.body.result.members.map((m: { id: string }) => m.id)).toEqual(['alice', 'bob']);
    expect((await as('bob').get('/rooms/invitations')).body.result.totalCount).toBe(0);
    // Without an invitation, an invitation-only room refuses.
    await t.createUser(app, 'dave');
    const dave = user(t.base, app, (await admin(t.base, app).post('/admin/clients', { _id: 'dave', issueAccessToken: true })).body.result.token);
    expect(code(await dave.post('/rooms/club/join'))).toBe('INVITATION_REQUIRED');
    // Adding members to it invites them; the inviter (or a superuser) withdraws: cancelInvitation {room}.
    await as('bob').post('/rooms/club/members', { invitees: ['dave'] });
    expect((await dave.get('/rooms/invitations')).body.result.totalCount).toBe(1);
    const withdrawn = once<string>(carol, 'cancelInvitation');
    expect(code(await as('bob').post('/rooms/club/delete/invitations', { invitees: ['carol'] }))).toBe('NOT_INVITER');
    const cancelled = await as('alice').post('/rooms/club/delete/invitations', { invitees: ['carol'] });
    expect(cancelled.body.result.data.map((i: { invitee: string }) => i.invitee)).toEqual(['dave']);
    // Flutter reads json["room"] of the decoded payload.
    expect(decodeB64((await withdrawn)[0])).toEqual({ room: 'club' });
    expect(code(await as('carol').post('/rooms/club/join'))).toBe('INVITATION_REQUIRED');
    // The invitee declines.
    expect((await dave.del('/rooms/club/invitations')).status).toBe(200);
    expect(code(await dave.del('/rooms/club/invitations'))).toBe('INVITATION_NOT_FOUND');
    expect(code(await dave.post('/rooms/club/join'))).toBe('INVITATION_REQUIRED');
    // A public room is joined without one (other rooms are closed to strangers: ROOM_NOT_PUBLIC).
    await admin(t.base, app).post('/rooms', { _id: 'open', members: ['alice'], isPublic: true });
    expect((await dave.post('/rooms/open/join')).status).toBe(200);
  });

  it('POST /badges/byRoomTags: unread per tag, total over rooms with every tag, banned rooms not counted', async () => {
    const adm = admin(t.base, app);
    for (const [id, roomTags] of [['b1', ['demo', 'sample']], ['b2', ['demo']], ['b3', ['sample']], ['b4', ['demo', 'sample']]] as const) {
      await adm.post('/rooms', { _id: id, members: ['alice', 'bob'], roomTags, owner: 'alice' });
    }
    const post = (room: string, n: number) => Promise.all(Array.from({ length: n }, (_, i) => as('alice').post(`/rooms/${room}/message`, { message: `m${i}` })));
    await post('b1', 1);
    await post('b2', 2);
    await post('b3', 4);
    await post('b4', 8);
    await as('alice').post('/blockStatus/room/b4/bob');
    // Body as api-doc client/Badge-Count-unreads-by-room-tags.md: {"tags":["demo","sample"]}
    const res = await as('bob').post('/badges/byRoomTags', { tags: ['demo', 'sample'] });
    expect(res.body.result).toEqual({ totalBadge: 1, data: { demo: 3, sample: 5 } });
    expect((await as('bob').post('/badges/byRoomTags', { tags: ['demo'] })).body.result).toEqual({ totalBadge: 3, data: { demo: 3 } });
    const all = (await as('bob').post('/badges/byRoomTags', {})).body.result;
    expect(all.data).toMatchObject({ demo: 3, sample: 5 });
    expect(all.totalBadge).toBeGreaterThanOrEqual(7);
    expect((await as('alice').post('/badges/byRoomTags', { tags: ['demo', 'sample'] })).body.result).toEqual({ totalBadge: 0, data: { demo: 0, sample: 0 } });
    expect(code(await admin(t.base, app).post('/badges/byRoomTags', { tags: ['demo'] }))).toBe('USER_TOKEN_REQUIRED');
  });

  it('GET /rooms?updatedAfter= lists only rooms changed, messaged or created since (ISO or ms)', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'old', members: ['carol'] });
    await admin(t.base, app).post('/rooms', { _id: 'quiet', members: ['carol'] });
    const since = Date.now();
    await until(() => Date.now() > since);
    await as('carol').post('/rooms/old/message', { message: 'new activity' });
    const ids = async (q: string) => (await as('carol').get(`/rooms?${q}`)).body.result.data.map((r: { _id: string }) => r._id);
    expect(await ids(`updatedAfter=${since}`)).toEqual(['old']);
    expect(await ids(`updatedAfter=${encodeURIComponent(new Date(since).toISOString())}`)).toEqual(['old']);
    expect((await ids('')).length).toBeGreaterThan(1);
    expect(code(await as('carol').get('/rooms?updatedAfter=yesterday'))).toBe('INVALID_INPUT');
  });
});
