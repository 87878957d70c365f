import type { Kysely } from 'kysely';
import type { SecretBox } from '../../platform/secret-box.ts';
import type { DB } from '../../storage/schema.ts';

/**
 * Key rotation, step two (`npm run cli -- reseal-secrets`): every secret at rest sealed with an
 * older key — inbox credentials, webhook signing secrets — is opened and sealed again with the
 * current (first) key, row by row. Afterwards the old key can leave ENCRYPTION_KEYS.
 */
export async function resealSecrets(db: Kysely<DB>, box: SecretBox): Promise<{ inboxes: number; webhooks: number }> {
  let inboxes = 0;
  for (const r of await db.selectFrom('inboxes').select(['id', 'credentials_enc']).where('credentials_enc', 'is not', null).execute()) {
    if (!box.isStale(r.credentials_enc!)) continue;
    await db.updateTable('inboxes').set({ credentials_enc: box.seal(box.open(r.credentials_enc!)) }).where('id', '=', r.id).execute();
    inboxes += 1;
  }
  let webhooks = 0;
  for (const r of await db.selectFrom('webhook_endpoints').select(['id', 'secret_enc']).execute()) {
    if (!box.isStale(r.secret_enc)) continue;
    await db.updateTable('webhook_endpoints').set({ secret_enc: box.seal(box.open(r.secret_enc)) }).where('id', '=', r.id).execute();
    webhooks += 1;
  }
  return { inboxes, webhooks };
}
