import type { Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../../../config/config.ts';
import type { Clock } from '../../../platform/clock.ts';
import type { DB } from '../../../storage/schema.ts';
import type { InboxesService } from '../../inboxes/inboxes.service.ts';
import type { DeliveryResult } from '../../integrations/dispatcher.ts';
import type { IntegrationEvents } from '../../integrations/events.ts';
import type { MessagesService } from '../../messages/messages.service.ts';
import { sendCodechat, sendEvolution, sendMeta, sendTelegram, sendWhatsApp, type Sender } from './senders.ts';

/** The outbox target of replies going out to platforms. */
export const PLATFORM_SEND_TARGET = 'platform_send';

/** WhatsApp's customer-service window: free-form replies only within 24 h of the customer's last message. */
const WHATSAPP_WINDOW_MS = 24 * 3600 * 1000;

const SENDERS: Record<string, { send: Sender; base: (c: Config['platformApis']) => string }> = {
  whatsapp: { send: sendWhatsApp, base: (c) => c.whatsapp },
  telegram: { send: sendTelegram, base: (c) => c.telegram },
  instagram: { send: sendMeta, base: (c) => c.meta },
  messenger: { send: sendMeta, base: (c) => c.meta },
  evolution: { send: sendEvolution, base: () => '' },
  codechat: { send: sendCodechat, base: () => '' },
};

/**
 * Replies out (issue 6): a staff message in a support conversation of a platform inbox is queued
 * in the outbox in its own transaction (status `pending`), then sent by the dispatcher through the
 * platform's send API with retries and backoff; it becomes `sent` with the platform's id (statuses
 * then move it on: delivered, read), or `failed` with the platform's error. Private notes never go
 * out (the messages service does not queue them).
 */
export class OutboundService {
  readonly #metric: Counter<'platform' | 'outcome'>;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly inboxes: InboxesService,
    private readonly messages: MessagesService,
    private readonly integrations: IntegrationEvents,
    private readonly apis: Config['platformApis'],
    private readonly clock: Clock,
    registry: Registry,
  ) {
    this.#metric = new Counter({ name: 'chat_platform_sends_total', help: 'Replies sent to platforms, by outcome', labelNames: ['platform', 'outcome'] as const, registers: [registry] });
  }

  /** In the message's transaction: queue its send when the conversation's inbox is a platform's. */
  async enqueue(trx: Kysely<DB>, orgId: string, conversationId: string, messageId: string): Promise<boolean> {
    const inbox = await trx
      .selectFrom('conversations as c')
      .innerJoin('inboxes as i', 'i.id', 'c.inbox_id')
      .select(['i.platform'])
      .where('c.id', '=', conversationId)
      .where('c.org_id', '=', orgId)
      .executeTakeFirst();
    if (!inbox || !(inbox.platform in SENDERS)) return false;
    await trx.updateTable('messages').set({ delivery_status: 'pending' }).where('id', '=', messageId).execute();
    await this.integrations.enqueue(trx, [{ orgId, target: PLATFORM_SEND_TARGET, eventName: `send.${inbox.platform}`, eventId: messageId, payload: JSON.stringify({ message_id: messageId }), idempotencyKey: `send:${messageId}` }]);
    return true;
  }

  /** The outbox handler: send one message. */
  async deliver(messageId: string, signal: AbortSignal, lastAttempt: boolean): Promise<DeliveryResult> {
    const m = await this.db.selectFrom('messages').selectAll().where('id', '=', messageId).executeTakeFirst();
    if (!m || m.deleted_at !== null || m.private === 1) return { ok: true };
    if (m.delivery_status !== 'pending') return { ok: true };
    const conv = await this.db.selectFrom('conversations').select(['inbox_id', 'contact_id', 'org_id']).where('id', '=', m.conversation_id).executeTakeFirst();
    const inbox = conv?.inbox_id ? await this.inboxes.getRow(conv.org_id, conv.inbox_id) : undefined;
    const platform = inbox ? SENDERS[inbox.platform] : undefined;
    const identity = inbox && conv?.contact_id ? await this.db.selectFrom('contact_identities').select('external_id').where('inbox_id', '=', inbox.id).where('contact_id', '=', conv.contact_id).executeTakeFirst() : undefined;
    if (!inbox || !platform || !identity) return this.#fail(m, inbox?.platform ?? 'unknown', 'no platform identity for this contact in this inbox', true);
    if (inbox.platform === 'whatsapp') {
      const last = await this.db
        .selectFrom('messages')
        .select('created_at')
        .where('conversation_id', '=', m.conversation_id)
        .where('sender_type', '=', 'contact')
        .orderBy('seq', 'desc')
        .executeTakeFirst();
      if (!last || this.clock.now() - Date.parse(last.created_at) > WHATSAPP_WINDOW_MS) {
        return this.#fail(m, inbox.platform, 'whatsapp.window_closed: more than 24 hours since the customer last wrote; send a template', true);
      }
    }
    const replyTo = m.metadata ? (JSON.parse(m.metadata) as { reply_to?: string }).reply_to : undefined;
    const replyExternal = replyTo ? (await this.db.selectFrom('messages').select('external_id').where('id', '=', replyTo).executeTakeFirst())?.external_id ?? undefined : undefined;
    const r = await platform.send(
      { base: platform.base(this.apis), credentials: this.inboxes.credentials(inbox), timeoutMs: this.apis.timeoutMs, signal },
      { to: identity.external_id, text: m.body, ...(replyExternal ? { replyToExternalId: replyExternal } : {}) },
    );
    if (r.ok) {
      await this.db.updateTable('messages').set({ external_id: r.externalId }).where('id', '=', m.id).execute();
      await this.messages.applyPlatformChange({ ...m, external_id: r.externalId }, { deliveryStatus: 'sent', deliveryError: null });
      this.#metric.inc({ platform: inbox.platform, outcome: 'sent' });
      return { ok: true };
    }
    const error = `${r.code ?? ''} ${r.error}`.trim();
    if (!r.retryable || lastAttempt) return this.#fail(m, inbox.platform, error, true);
    this.#metric.inc({ platform: inbox.platform, outcome: 'retry' });
    return { ok: false, error };
  }

  async #fail(m: { id: string; org_id: string; conversation_id: string } & Parameters<MessagesService['applyPlatformChange']>[0], platform: string, error: string, permanent: boolean): Promise<DeliveryResult> {
    await this.messages.applyPlatformChange(m, { deliveryStatus: 'failed', deliveryError: error });
    await this.db.transaction().execute((trx) => this.integrations.record(trx, m.org_id, 'chat.message.status', { conversation_id: m.conversation_id, message_id: m.id, status: 'failed', error }));
    this.#metric.inc({ platform, outcome: 'failed' });
    return { ok: false, error, permanent };
  }
}
