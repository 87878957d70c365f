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

// A batch job's look-back (runAll): the inbox's untried deliveries older than the batch, any chat.
const EARLIER_IN_INBOX = new PreparedQuery<[inboxId: string, platform: string, before: string, limit: number], { id: string; order_key: string }>((db: Kysely<DB>, param) =>
  db
    .selectFrom('webhook_events')
    .select(['id', 'order_key'])
    .where('inbox_id', '=', param(0))
    .where('platform', '=', param(1))
    .where('status', '=', sql.lit('received'))
    .where('id', '<', param(2))
    .orderBy('id')
    .limit(param(3)),
);

/** How many of an inbox's older untried deliveries a batch job looks at (see runAll). */
const LOOK_BACK = 2000;

/** A stored delivery with what orders it: its inbox, platform and chat. */
export interface Ordered {
  id: string;
  inboxId: string;
  platform: string;
  key: string;
}

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

  /**
   * The deliveries of one job (those acknowledged together; ids ascending), as run() would do each:
   * every one is queued on its chat at once, in order, and runs after the chat's earlier ones. The
   * chat's earlier untried deliveries that belong to other jobs (another process's, a retry's) are
   * looked up once per inbox for the whole batch, not once per delivery: a look-up reads every
   * untried delivery of the inbox older than the batch, and with batch jobs in flight those are
   * up to thousands. Each settles on its own: `null` when it was processed meanwhile or is gone.
   */
  runAll<T>(items: readonly Ordered[], one: (id: string) => Promise<T>): Promise<Array<PromiseSettledResult<T | null>>> {
    const chatOf = (i: { inboxId: string; platform: string }, key: string) => `${i.inboxId}:${i.platform}:${key}`;
    // Started now, awaited inside the queue: the deliveries are queued in this call, before any
    // await, so jobs started one after the other queue their chats' deliveries in that order.
    const lookUp = (async () => {
      const chats = new Set(items.map((i) => chatOf(i, i.key)));
      const oldest = new Map<string, Ordered>();
      for (const i of items) if (!oldest.has(`${i.inboxId}:${i.platform}`)) oldest.set(`${i.inboxId}:${i.platform}`, i);
      const earlier = new Map<string, string[]>();
      for (const i of oldest.values()) {
        for (const e of await EARLIER_IN_INBOX.execute(this.db, [i.inboxId, i.platform, i.id, LOOK_BACK])) {
          const chat = chatOf(i, e.order_key);
          if (!chats.has(chat)) continue;
          const list = earlier.get(chat);
          if (list) list.push(e.id);
          else earlier.set(chat, [e.id]);
        }
      }
      return earlier;
    })();
    const untried = async (id: string) => {
      const [ev] = await EVENT.execute(this.db, [id]);
      return ev !== undefined && ev.status !== 'processed';
    };
    return Promise.allSettled(
      items.map((i) =>
        this.#queue.run(`${i.inboxId}:${i.key}`, async () => {
          // The chat's first delivery of the batch takes the chat's earlier ones first.
          const earlier = await lookUp;
          const chat = chatOf(i, i.key);
          const before = earlier.get(chat);
          earlier.delete(chat);
          // Their own jobs report and retry their failures.
          for (const id of before ?? []) if (await untried(id)) await one(id).catch(() => undefined);
          return (await untried(i.id)) ? one(i.id) : null;
        }),
      ),
    );
  }
}
