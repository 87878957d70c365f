import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { newTestDb, testDialects } from '../../../test/helpers/new-test-db.ts';
import { SecretBox } from '../../platform/secret-box.ts';
import { resealSecrets } from './reseal.ts';

for (const dialect of testDialects()) {
  describe(`secrets at rest: key rotation (${dialect})`, () => {
    it('reseals inbox credentials and webhook secrets with the new key; the old key can then go', async () => {
      const db = await newTestDb(dialect);
      try {
        const k1 = { id: 'k1', key: randomBytes(32) };
        const k2 = { id: 'k2', key: randomBytes(32) };
        const old = new SecretBox([k1]);
        const orgId = randomUUID();
        const now = new Date().toISOString();
        await db.db.insertInto('organizations').values({ id: orgId, slug: `o${orgId.slice(0, 8)}`, name: 'o', registration_open: 1, default_role: 'member', settings: '{}', created_at: now, updated_at: now }).execute();
        const inboxId = randomUUID();
        await db.db
          .insertInto('inboxes')
          .values({ id: inboxId, org_id: orgId, name: 'wa', platform: 'whatsapp', credentials_enc: old.seal('{"access_token":"t"}'), webhook_token: 'w', settings: null, auto_assign: 0, agent_capacity: 0, reassign_offline: 0, created_at: now, updated_at: now })
          .execute();
        const hookId = randomUUID();
        await db.db.insertInto('webhook_endpoints').values({ id: hookId, org_id: orgId, url: 'https://example.com/h', secret_enc: old.seal('whsec'), events: '["*"]', active: 1, created_at: now, updated_at: now }).execute();
        const rotated = new SecretBox([k2, k1]);
        assert.deepEqual(await resealSecrets(db.db, rotated), { inboxes: 1, webhooks: 1 });
        assert.deepEqual(await resealSecrets(db.db, rotated), { inboxes: 0, webhooks: 0 }, 'nothing stale the second time');
        const onlyNew = new SecretBox([k2]);
        const inbox = await db.db.selectFrom('inboxes').select('credentials_enc').where('id', '=', inboxId).executeTakeFirstOrThrow();
        assert.equal(onlyNew.open(inbox.credentials_enc!), '{"access_token":"t"}');
        const hook = await db.db.selectFrom('webhook_endpoints').select('secret_enc').where('id', '=', hookId).executeTakeFirstOrThrow();
        assert.equal(onlyNew.open(hook.secret_enc), 'whsec');
      } finally {
        await db.drop();
      }
    });
  });
}
