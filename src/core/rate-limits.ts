import type { RateLimiter } from '../ratelimit/limiter.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';

export interface RateLimitOptions {
  limiter: RateLimiter;
  /** Requests per minute per API key (IMKIT: 1000); 0 = no limit. */
  perApiKeyPerMinute: number;
  /** Requests per minute per user; 0 = no limit. */
  perUserPerMinute: number;
}

/** REST rate limits per API key and per user: over the limit, 429 RATE_LIMIT_EXCEEDED with retryAfter. */
export class RateLimitService {
  constructor(private options: RateLimitOptions) {}

  async check(actor: Actor): Promise<void> {
    const limit = actor.kind === 'admin' ? this.options.perApiKeyPerMinute : this.options.perUserPerMinute;
    if (limit === 0) return;
    const subject = actor.kind === 'admin' ? 'apikey' : `user:${actor.userId}`;
    const decision = await this.options.limiter.hit(actor.app.id, subject, limit, 60_000);
    if (!decision.allowed) throw Errors.rateLimitExceeded(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  }
}
