import type { Principal } from '../../access/access.ts';
import type { LiveCount, PresenceStore } from './presence-store.ts';
import type { RealtimePublisher } from './publisher.ts';

export type PresenceStatus = 'online' | 'away' | 'dnd' | 'offline';

/**
 * Presence from live connections (any node, through the PresenceStore) and the status the user
 * chose (`PUT /api/v1/users/status`: away and dnd are kept while connected): offline without a
 * connection; else dnd or away when chosen; else online while any connection is active, away
 * when all are idle. Changes are published to the organization (`presence` events).
 */
export class PresenceService {
  /** Last status published per user by this node, so repeats are not sent. */
  readonly #published = new Map<string, PresenceStatus>();

  constructor(
    private readonly store: PresenceStore,
    private readonly publisher: RealtimePublisher,
  ) {}

  async connected(p: Principal, connId: string): Promise<void> {
    this.#publishIfChanged(p, await this.store.connect(p.userId!, connId));
  }

  async disconnected(p: Principal, connId: string): Promise<void> {
    this.#publishIfChanged(p, await this.store.disconnect(p.userId!, connId));
  }

  async activity(p: Principal, connId: string, idle: boolean): Promise<void> {
    this.#publishIfChanged(p, await this.store.setIdle(p.userId!, connId, idle));
  }

  heartbeat(entries: Array<{ userId: string; connId: string; idle: boolean }>): Promise<void> {
    return this.store.refresh(entries);
  }

  /** Effective statuses of users, given the status each chose. */
  async statuses(users: Array<{ id: string; status: string }>): Promise<Map<string, PresenceStatus>> {
    const live = await this.store.get(users.map((u) => u.id));
    return new Map(users.map((u) => [u.id, effective(u.status, live.get(u.id) ?? { connections: 0, active: 0 })]));
  }

  /** Called when a user's last connection closed (after the presence event). */
  onOffline(handler: (orgId: string, userId: string) => void): void {
    this.#offline.push(handler);
  }
  readonly #offline: Array<(orgId: string, userId: string) => void> = [];

  /** `live`: the user's counts as the store returned them with the change. */
  #publishIfChanged(p: Principal, live: LiveCount): void {
    const userId = p.userId!;
    const status = effective(p.user?.status ?? 'online', live);
    if (this.#published.get(userId) === status) return;
    if (status === 'offline') for (const h of this.#offline) h(p.orgId, userId);
    if (status === 'offline') this.#published.delete(userId);
    else this.#published.set(userId, status);
    this.publisher.toOrg(p.orgId, 'presence', { user_id: userId, status });
  }
}

export function effective(chosen: string, live: LiveCount): PresenceStatus {
  if (live.connections === 0) return 'offline';
  if (chosen === 'dnd' || chosen === 'away') return chosen;
  return live.active > 0 ? 'online' : 'away';
}
