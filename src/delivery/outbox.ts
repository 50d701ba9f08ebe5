import { newId } from '../core/secrets.js';
import type { OutboxItem, OutboxKind } from '../core/models.js';

/** A new pending item, due now. */
export function newOutboxItem(appId: string, kind: OutboxKind, payload: Record<string, unknown>, id = newId(), now = Date.now()): OutboxItem {
  return { id, appId, kind, payload, status: 'pending', attempts: 0, nextAt: now, createdAt: now, updatedAt: now };
}

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential, capped, with jitter
 * (uniform in the upper half) so that items failing together do not retry together.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
