import { sql, type Kysely } from 'kysely';

/**
 * The partial index of untried deliveries (0011) is keyed by arrival instead of by chat:
 * (inbox_id, id, …) instead of (inbox_id, platform, order_key, id). Keyed by chat, each new
 * delivery landed on whichever leaf held its chat, so every ack of a batch dirtied its own page:
 * with a backlog of 50,000 deliveries in 1,000 chats that index was about half of an ack's WAL
 * pages and ~10 of its ~30 µs of SQLite time (BENCHMARKS.md). Ids are time-ordered, so new
 * entries now append, and a processed delivery leaves from near the front.
 *
 * ArrivalOrder asks for a chat's untried deliveries older than the one it runs: the range is now
 * every untried delivery of the inbox older than it, filtered by chat from the index itself
 * (platform and order_key are in it). Deliveries are started oldest first, so those are the ones
 * in flight (and any replayed), not the backlog behind.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('webhook_events_waiting_idx').execute();
  await db.schema
    .createIndex('webhook_events_waiting_idx')
    .on('webhook_events')
    .columns(['inbox_id', 'id', 'platform', 'order_key'])
    .where(sql<boolean>`status = 'received'`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('webhook_events_waiting_idx').execute();
  await db.schema
    .createIndex('webhook_events_waiting_idx')
    .on('webhook_events')
    .columns(['inbox_id', 'platform', 'order_key', 'id'])
    .where(sql<boolean>`status = 'received'`)
    .execute();
}
