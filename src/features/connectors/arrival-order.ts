import { type Kysely, sql } from 'kysely';
import { KeyedQueue } from '../../platform/keyed-queue.ts';
import { PreparedQuery } from '../../storage/prepared.ts';
import type { DB } from '../../storage/schema.ts';

// Both run for every delivery processed: prepared (storage/prepared.ts).
const EVENT = new PreparedQuery<[id: string], { inbox_id: string; platform: string; status: string; order_key: string }>((db: Kysely<DB>, param) =>
  db.selectFrom('webhook_events').select(['inbox_id', 'platform', 'status', 'order_key']).where('id', '=', param(0)),
);
// The partial index of untried deliveries (migration 0016) is keyed (inbox_id, id, platform,
// order_key): this reads the inbox's untried deliveries older than the one run — those in flight,
// as deliveries start oldest first — and keeps the chat's, without reading the table.
const EARLIER = new PreparedQuery<[inboxId: string, platform: string, orderKey: string, before: string], { id: string }>((db: Kysely<DB>, param) =>
  db
    .selectFrom('webhook_events')
    .select('id')
    .where('inbox_id', '=', param(0))
    .where('platform', '=', param(1))
    .where('order_key', '=', param(2))
    // A literal, not a parameter: only then can SQLite use the partial index (status = 'received').
    .where('status', '=', sql.lit('received'))
    .where('id', '<', param(3))
    .orderBy('id')
    .limit(100),
);

/**
 * Stored webhook deliveries are processed in the order they arrived, per chat (the outbox runs jobs
 * concurrently, and two messages of one chat a few milliseconds apart must not swap places; other
 * chats go side by side). Jobs of one chat run one at a time in this process, in the order the
 * dispatcher started them (it starts a claim's rows oldest first); each first processes the chat's earlier
 * deliveries that were never tried (ids are time-ordered), and a delivery already processed by such
 * a sweep is skipped when its own job comes. Failures stay with each delivery's own job and its
 * retries. Across processes this is best effort (dedupe keeps a delivery processed twice stored once).
 */
export class ArrivalOrder {
  readonly #queue = new KeyedQueue();

  constructor(private readonly db: Kysely<DB>) {}

  /**
   * Runs `one(id)` for delivery `id` after its chat's earlier untried ones; null when it was
   * processed meanwhile or is gone. `order`, when the job knows it (inbox and chat), queues the work
   * at once, in start order.
   */
  async run<T>(id: string, order: { inboxId: string; key: string } | undefined, one: (id: string) => Promise<T>): Promise<T | null> {
    const known = order ?? (await this.db.selectFrom('webhook_events').select(['inbox_id as inboxId', 'order_key as key']).where('id', '=', id).executeTakeFirst());
    if (known === undefined) return null;
    return this.#queue.run(`${known.inboxId}:${known.key}`, async () => {
      const [ev] = await EVENT.execute(this.db, [id]);
      if (!ev || ev.status === 'processed') return null;
      const earlier = await EARLIER.execute(this.db, [ev.inbox_id, ev.platform, ev.order_key, id]);
      // Their own jobs report and retry their failures.
      for (const e of earlier) await one(e.id).catch(() => undefined);
      return one(id);
    });
  }
}
