import type { Kysely } from 'kysely';
import { isoNow, type Clock } from '../../platform/clock.ts';
import type { DB } from '../../storage/schema.ts';

export type LinkKind = 'contact' | 'conversation' | 'message';

/**
 * Parley ↔ Chatwoot ids, per mirrored inbox (chatwoot_links). A row with a null `cw_id` is a
 * claim: the Chatwoot side is being made (or was, and the answer was lost).
 */
export class Links {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly clock: Clock,
  ) {}

  get(inboxId: string, kind: LinkKind, parleyId: string) {
    return this.db.selectFrom('chatwoot_links').select(['cw_id', 'source_id']).where('inbox_id', '=', inboxId).where('kind', '=', kind).where('parley_id', '=', parleyId).executeTakeFirst();
  }

  async cwId(inboxId: string, kind: LinkKind, parleyId: string): Promise<string | null> {
    return (await this.get(inboxId, kind, parleyId))?.cw_id ?? null;
  }

  /** The Parley id linked to a Chatwoot id. */
  async parleyId(inboxId: string, kind: LinkKind, cwId: string): Promise<string | null> {
    const r = await this.db.selectFrom('chatwoot_links').select('parley_id').where('inbox_id', '=', inboxId).where('kind', '=', kind).where('cw_id', '=', cwId).executeTakeFirst();
    return r?.parley_id ?? null;
  }

  /** Claim a link: `existed` when a row was already there (its cw_id null = an earlier attempt may have made it). */
  async claim(inboxId: string, kind: LinkKind, parleyId: string): Promise<{ existed: boolean; cwId: string | null }> {
    const r = await this.db
      .insertInto('chatwoot_links')
      .values({ inbox_id: inboxId, kind, parley_id: parleyId, cw_id: null, source_id: null, created_at: isoNow(this.clock) })
      .onConflict((oc) => oc.columns(['inbox_id', 'kind', 'parley_id']).doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) > 0) return { existed: false, cwId: null };
    return { existed: true, cwId: await this.cwId(inboxId, kind, parleyId) };
  }

  /** Set (or replace) a link; `trx` to write it with the change it belongs to. */
  async set(inboxId: string, kind: LinkKind, parleyId: string, cwId: string, sourceId: string | null = null, trx: Kysely<DB> = this.db): Promise<void> {
    await trx
      .insertInto('chatwoot_links')
      .values({ inbox_id: inboxId, kind, parley_id: parleyId, cw_id: cwId, source_id: sourceId, created_at: isoNow(this.clock) })
      .onConflict((oc) => oc.columns(['inbox_id', 'kind', 'parley_id']).doUpdateSet({ cw_id: cwId, source_id: sourceId }))
      .execute();
  }

  async drop(inboxId: string, kind: LinkKind, parleyId: string): Promise<void> {
    await this.db.deleteFrom('chatwoot_links').where('inbox_id', '=', inboxId).where('kind', '=', kind).where('parley_id', '=', parleyId).execute();
  }
}
