import type { EventBus } from '../bus/event-bus.ts';
import type { Principal } from './access.ts';

/** Which cached principals to drop: every entry matching any given field. */
export interface Invalidation {
  orgId?: string;
  userId?: string;
  sessionId?: string;
  apiKeyId?: string;
}

interface Entry {
  principal: Principal;
  expiresAt: number;
}

export const INVALIDATION_TOPIC = 'auth.invalidate';

/**
 * Credentials → Principal, remembered so that an authenticated request costs a map lookup instead
 * of a token verification and a database read. Correctness rests on invalidation: every change
 * that can end or alter a principal (logout, revocation, refresh reuse, any user update, key
 * revocation, organization deletion) calls `invalidate` after its commit, which is published on
 * the event bus so every node drops the entries. The bus is at most once, so entries also expire
 * after `ttlMs` (and never outlive the token's own expiry). A lookup that started before an
 * invalidation cannot store its (possibly stale) result: `set` checks the generation it began with.
 */
export class PrincipalCache {
  readonly #entries = new Map<string, Entry>();
  #generation = 0;

  constructor(
    private readonly bus: EventBus,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly max = 50_000,
  ) {}

  /** Subscribe to invalidations from every node. */
  async start(): Promise<void> {
    await this.bus.subscribe(INVALIDATION_TOPIC, (payload) => this.#drop(JSON.parse(payload) as Invalidation));
  }

  get generation(): number {
    return this.#generation;
  }

  get(key: string): Principal | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt > this.now()) return e.principal;
    this.#entries.delete(key);
    return undefined;
  }

  /** Remember `principal` unless an invalidation happened since `generation` was read. */
  set(key: string, principal: Principal, generation: number, notAfterMs = Infinity): void {
    if (this.ttlMs <= 0 || generation !== this.#generation) return;
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, { principal, expiresAt: Math.min(this.now() + this.ttlMs, notAfterMs) });
  }

  /** Drop matching entries here and on every other node. Call after the change is committed. */
  async invalidate(sel: Invalidation): Promise<void> {
    await this.bus.publish(INVALIDATION_TOPIC, JSON.stringify(sel));
  }

  #drop(sel: Invalidation): void {
    this.#generation += 1;
    for (const [key, { principal: p }] of this.#entries) {
      if (
        (sel.orgId !== undefined && p.orgId === sel.orgId) ||
        (sel.userId !== undefined && p.userId === sel.userId) ||
        (sel.sessionId !== undefined && p.sessionId === sel.sessionId) ||
        (sel.apiKeyId !== undefined && p.apiKeyId === sel.apiKeyId)
      ) {
        this.#entries.delete(key);
      }
    }
  }
}
