import type { Kysely, Selectable, Updateable } from 'kysely';
import { PreparedQuery } from '../../storage/prepared.ts';
import type { DB, WebhookEndpointsTable } from '../../storage/schema.ts';

export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;

/** Read in the transaction of every change that records an integration event: prepared (storage/prepared.ts). */
const LIST_ACTIVE = new PreparedQuery<[orgId: string], Pick<WebhookEndpointRow, 'id' | 'events'>>((db: Kysely<DB>, param) =>
  db.selectFrom('webhook_endpoints').select(['id', 'events']).where('org_id', '=', param(0)).where('active', '=', 1),
);

/** SQL for webhook endpoints. Every query is scoped by org_id. */
export class WebhooksRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async create(row: WebhookEndpointRow): Promise<WebhookEndpointRow> {
    await this.db.insertInto('webhook_endpoints').values(row).execute();
    return row;
  }

  getById(orgId: string, id: string): Promise<WebhookEndpointRow | undefined> {
    return this.db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  list(orgId: string): Promise<WebhookEndpointRow[]> {
    return this.db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').limit(1000).execute();
  }

  /** The active endpoints of an organization, read in the producer's transaction. */
  listActive(trx: Kysely<DB>, orgId: string): Promise<Array<Pick<WebhookEndpointRow, 'id' | 'events'>>> {
    return LIST_ACTIVE.execute(trx, [orgId]);
  }

  async update(orgId: string, id: string, patch: Updateable<Omit<WebhookEndpointsTable, 'id' | 'org_id'>>): Promise<WebhookEndpointRow | undefined> {
    await this.db.updateTable('webhook_endpoints').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
    return this.getById(orgId, id);
  }

  /** Delete in the caller's transaction; true when it existed. */
  async delete(trx: Kysely<DB>, orgId: string, id: string): Promise<boolean> {
    const res = await trx.deleteFrom('webhook_endpoints').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  transaction<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }
}
