import { Migrator, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import * as m0001 from './migrations/0001-foundation.ts';
import * as m0002 from './migrations/0002-conversations.ts';
import * as m0003 from './migrations/0003-threads-reactions-read.ts';
import * as m0004 from './migrations/0004-files.ts';
import * as m0005 from './migrations/0005-search.ts';
import * as m0006 from './migrations/0006-message-counters.ts';
import * as m0007 from './migrations/0007-message-versions.ts';
import * as m0008 from './migrations/0008-support-outbox.ts';
import * as m0009 from './migrations/0009-inbound.ts';
import * as m0010 from './migrations/0010-chatwoot-relay.ts';
import * as m0011 from './migrations/0011-inbound-order.ts';
import * as m0012 from './migrations/0012-partial-message-indexes.ts';
import * as m0013 from './migrations/0013-fts-batches.ts';
import * as m0014 from './migrations/0014-contact-conversation-index.ts';
import * as m0015 from './migrations/0015-fts-high-water-mark.ts';
import * as m0016 from './migrations/0016-waiting-deliveries-by-arrival.ts';
import * as m0017 from './migrations/0017-fts-merge-in-steps.ts';

/**
 * Migrations are imported statically (not read from a folder) so they work the same from
 * TypeScript sources and from the compiled build. Add new ones here, in order.
 */
const MIGRATIONS: Record<string, Migration> = {
  '0001-foundation': m0001,
  '0002-conversations': m0002,
  '0003-threads-reactions-read': m0003,
  '0004-files': m0004,
  '0005-search': m0005,
  '0006-message-counters': m0006,
  '0007-message-versions': m0007,
  '0008-support-outbox': m0008,
  '0009-inbound': m0009,
  '0010-chatwoot-relay': m0010,
  '0011-inbound-order': m0011,
  '0012-partial-message-indexes': m0012,
  '0013-fts-batches': m0013,
  '0014-contact-conversation-index': m0014,
  '0015-fts-high-water-mark': m0015,
  '0016-waiting-deliveries-by-arrival': m0016,
  '0017-fts-merge-in-steps': m0017,
};

/** Every migration, in order (the tests check that all of them apply). */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS);

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

/** Bring the schema to the latest version. Safe to call from several processes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Kysely<unknown>): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider });
  const result = await migrator.migrateToLatest();
  if (result.error) throw result.error instanceof Error ? result.error : new Error(String(result.error));
  return result;
}
