import { requireAccess, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { AppError, notFound } from '../../platform/errors.ts';
import { newId, randomToken } from '../../platform/ids.ts';
import { resolveSafeUrl, UnsafeUrlError } from '../../platform/safe-http.ts';
import type { SecretBox } from '../../platform/secret-box.ts';
import { parseFilter } from './events.ts';
import type { OutboxFilter, OutboxRepo, OutboxRow } from './outbox.repo.ts';
import type { CreateWebhookBody, DeliveriesQuery, DeliveryDto, OutboxQuery, UpdateWebhookBody } from './webhooks.schemas.ts';
import type { WebhookEndpointRow, WebhooksRepo } from './webhooks.repo.ts';

export const toEndpointDto = (r: WebhookEndpointRow) => ({
  id: r.id,
  url: r.url,
  events: parseFilter(r.events),
  active: r.active === 1,
  created_at: r.created_at,
  updated_at: r.updated_at,
});

export const toDeliveryDto = (r: OutboxRow): DeliveryDto => ({
  id: r.id,
  event_id: r.event_id,
  event: r.event_name,
  target: r.target,
  endpoint_id: r.endpoint_id,
  status: r.status,
  attempts: r.attempts,
  response_status: r.response_status,
  last_error: r.last_error,
  created_at: r.created_at,
  next_attempt_at: r.next_attempt_at,
  delivered_at: r.delivered_at,
});

/**
 * Outgoing webhook endpoints of an organization, their delivery log, and the outbox seen by an
 * admin. The signing secret is generated here, returned once (create, rotate) and stored sealed
 * (SecretBox); no other answer and no log line carries it.
 */
export class WebhooksService {
  constructor(
    private readonly repo: WebhooksRepo,
    private readonly outbox: OutboxRepo,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    private readonly opts: { allowPrivate: boolean },
    private readonly kick: () => void,
  ) {}

  async list(p: Principal) {
    requireAccess(p, 'integrations.manage');
    return (await this.repo.list(p.orgId)).map(toEndpointDto);
  }

  async get(p: Principal, id: string) {
    requireAccess(p, 'integrations.manage');
    return toEndpointDto(await this.#endpoint(p, id));
  }

  async create(p: Principal, body: CreateWebhookBody) {
    requireAccess(p, 'integrations.manage');
    await this.#checkUrl(body.url);
    const secret = newSecret();
    const now = isoNow(this.clock);
    const row = await this.repo.create({
      id: newId(),
      org_id: p.orgId,
      url: body.url,
      secret_enc: this.secrets.seal(secret),
      events: JSON.stringify(body.events ?? ['*']),
      active: body.active === false ? 0 : 1,
      created_at: now,
      updated_at: now,
    });
    return { ...toEndpointDto(row), secret };
  }

  async update(p: Principal, id: string, body: UpdateWebhookBody) {
    requireAccess(p, 'integrations.manage');
    await this.#endpoint(p, id);
    if (body.url !== undefined) await this.#checkUrl(body.url);
    const row = await this.repo.update(p.orgId, id, {
      ...(body.url === undefined ? {} : { url: body.url }),
      ...(body.events === undefined ? {} : { events: JSON.stringify(body.events) }),
      ...(body.active === undefined ? {} : { active: body.active ? 1 : 0 }),
      updated_at: isoNow(this.clock),
    });
    if (!row) throw notFound('webhook.not_found', 'Webhook endpoint');
    return toEndpointDto(row);
  }

  /** Delete the endpoint; its waiting deliveries become `failed` (the log stays in the outbox). */
  async delete(p: Principal, id: string): Promise<void> {
    requireAccess(p, 'integrations.manage');
    const deleted = await this.repo.transaction(async (trx) => {
      await this.outbox.failPendingForEndpoint(trx, p.orgId, id, 'the webhook endpoint was deleted');
      return this.repo.delete(trx, p.orgId, id);
    });
    if (!deleted) throw notFound('webhook.not_found', 'Webhook endpoint');
  }

  /** A new secret, effective for every attempt from now on (including retries of older events). */
  async rotateSecret(p: Principal, id: string) {
    requireAccess(p, 'integrations.manage');
    await this.#endpoint(p, id);
    const secret = newSecret();
    await this.repo.update(p.orgId, id, { secret_enc: this.secrets.seal(secret), updated_at: isoNow(this.clock) });
    return { secret };
  }

  async deliveries(p: Principal, id: string, q: DeliveriesQuery) {
    requireAccess(p, 'integrations.manage');
    await this.#endpoint(p, id);
    return this.#page(p, { ...q, target: 'webhook', endpointId: id });
  }

  async listOutbox(p: Principal, q: OutboxQuery) {
    requireAccess(p, 'integrations.manage');
    return this.#page(p, q);
  }

  /** Deliver an outbox row again now (`webhookOnly`: the row must be a webhook delivery). */
  async redeliver(p: Principal, id: string, webhookOnly: boolean): Promise<DeliveryDto> {
    requireAccess(p, 'integrations.manage');
    const code = webhookOnly ? 'webhook.not_found' : 'outbox.not_found';
    const row = await this.outbox.getById(p.orgId, id);
    if (!row || (webhookOnly && row.target !== 'webhook')) throw notFound(code, webhookOnly ? 'Webhook delivery' : 'Outbox row');
    const updated = await this.outbox.redeliver(p.orgId, id, isoNow(this.clock));
    if (!updated) throw notFound(code, 'Outbox row');
    this.kick();
    return toDeliveryDto(updated);
  }

  async #page(p: Principal, q: DeliveriesQuery & { target?: string; endpointId?: string }) {
    const limit = q.limit ?? 50;
    const filter: OutboxFilter = { limit: limit + 1 };
    if (q.status) filter.status = q.status;
    if (q.target) filter.target = q.target;
    if (q.endpointId) filter.endpointId = q.endpointId;
    if (q.cursor) {
      const c = decodeCursor(q.cursor, ['c', 'i'] as const);
      filter.before = { createdAt: c.c, id: c.i };
    }
    const rows = await this.outbox.list(p.orgId, filter);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { data: page.map(toDeliveryDto), next_cursor: rows.length > limit && last ? encodeCursor({ c: last.created_at, i: last.id }) : null };
  }

  async #endpoint(p: Principal, id: string): Promise<WebhookEndpointRow> {
    const row = await this.repo.getById(p.orgId, id);
    if (!row) throw notFound('webhook.not_found', 'Webhook endpoint');
    return row;
  }

  async #checkUrl(url: string): Promise<void> {
    try {
      await resolveSafeUrl(url, this.opts.allowPrivate);
    } catch (err) {
      if (!(err instanceof UnsafeUrlError)) throw err;
      throw new AppError('webhook.url_not_allowed', `This webhook URL is not allowed: ${err.message}`, { fields: [{ field: '/body/url', message: err.message }] });
    }
  }
}

const newSecret = () => `whsec_${randomToken(32)}`;
