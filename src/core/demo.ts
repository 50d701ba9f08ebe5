import type { Core } from './core.js';

export interface DemoCredentials {
  appId: string;
  apiKey: string;
  clientKey: string;
  userId: string;
  token: string;
  roomId: string;
}

/**
 * The embedded default's demo tenant: one application, two users (alice, bob), a room they
 * share and a token for alice, so the printed curl line works on a fresh start.
 */
export async function provisionDemo(core: Core): Promise<DemoCredentials> {
  const { app, apiKey, clientKey } = await core.apps.createApp({ name: 'demo' });
  const admin = { kind: 'admin' as const, app };
  await core.users.upsert(admin, { _id: 'bob', nickname: 'Bob' });
  const alice = await core.users.upsert(admin, { _id: 'alice', nickname: 'Alice', issueAccessToken: true });
  const room = await core.rooms.create(admin, { _id: 'demo-room', name: 'Demo room', members: ['alice', 'bob'] }, false);
  await core.messages.sendAs(admin, { room: 'demo-room', sender: 'bob', message: 'Welcome to roomcast!' });
  return { appId: app.id, apiKey, clientKey, userId: 'alice', token: alice.token as string, roomId: room.id };
}
