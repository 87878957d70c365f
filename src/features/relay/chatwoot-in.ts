import type { Kysely } from 'kysely';
import type { Counter, Registry } from 'prom-client';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { newId, newOrderedId } from '../../platform/ids.ts';
import { HttpStatusError, ResponseTooLargeError, safeGet, UnsafeUrlError } from '../../platform/safe-http.ts';
import type { DB } from '../../storage/schema.ts';
import { ArrivalOrder } from '../connectors/arrival-order.ts';
import { type Delivery, header } from '../connectors/registry.ts';
import { checkChatwootSignature, checkToken } from '../connectors/signatures.ts';
import { mediaKindOf } from '../connectors/outbound/media-senders.ts';
import { normalizePhone } from '../contacts/phone.ts';
import type { ContactsService } from '../contacts/contacts.service.ts';
import type { FilesService } from '../files/files.service.ts';
import type { InboxesService } from '../inboxes/inboxes.service.ts';
import type { DeliveryResult } from '../integrations/dispatcher.ts';
import type { IntegrationEvents } from '../integrations/events.ts';
import { DuplicateDelivery, type MessagesService } from '../messages/messages.service.ts';
import type { SupportService } from '../support/support.service.ts';
import { ChatwootClient, ChatwootError, type Requester } from './chatwoot-client.ts';
import { Links } from './links.ts';
import { chatwootToWhatsApp } from './markdown.ts';
import { OUR_SOURCE_PREFIX, relayCounter, WHATSAPP_FAMILY } from './mirror-out.ts';
import type { MirrorsService, OpenMirror } from './mirrors.service.ts';

/** The outbox target that processes stored Chatwoot deliveries. */
export const CHATWOOT_IN_TARGET = 'chatwoot_in';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);

/** A refusal that retrying cannot change (an invalid phone, a conversation we cannot place). */
class Refused extends Error {}

export interface RelayInOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  /** Largest attachment downloaded from Chatwoot. */
  maxBytes: number;
}

/**
 * Chatwoot → Parley → platform (issue 7). Chatwoot posts every message of the API inbox to the
 * mirror's webhook URL; what an agent writes there (outgoing, not private, not one the mirror
 * wrote itself: CONNECTORS.md §5.1 filters) is stored in the Parley conversation as the business's
 * message — attachments downloaded into file storage — and goes out through the inbox's platform
 * like any agent reply (voice notes transcoded to OGG/Opus there). The delivery is acknowledged at
 * once; the work runs from the outbox with retries. Dedupe on Chatwoot's message id.
 */
export class ChatwootInbound {
  readonly #links: Links;
  readonly #metric: Counter<'direction' | 'outcome'>;
  readonly #order: ArrivalOrder;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly mirrors: MirrorsService,
    private readonly inboxes: InboxesService,
    private readonly contacts: ContactsService,
    private readonly support: SupportService,
    private readonly messages: MessagesService,
    private readonly files: FilesService,
    private readonly integrations: IntegrationEvents,
    private readonly http: Requester,
    private readonly opts: RelayInOptions,
    private readonly clock: Clock,
    registry: Registry,
  ) {
    this.#links = new Links(db, clock);
    this.#metric = relayCounter(registry);
    this.#order = new ArrivalOrder(db);
  }

  /** POST /webhooks/chatwoot/:inboxId — the answer for Chatwoot. */
  async receive(inboxId: string, d: Delivery): Promise<{ status: number; body: Json }> {
    const mirror = UUID.test(inboxId) ? await this.mirrors.open(inboxId) : undefined;
    if (!mirror) return this.#answer('unknown_inbox', 404, { error: { code: 'chatwoot.not_configured', message: 'No Chatwoot mirror here' } });
    const token = checkToken(d.query.token ?? header(d, 'x-parley-webhook-token'), mirror.row.webhook_token);
    if (token !== 'ok') return this.#answer('bad_token', token === 'missing' ? 401 : 403, { error: { code: token === 'missing' ? 'auth.required' : 'forbidden', message: 'The webhook URL’s token is missing or wrong' } });
    if (mirror.webhookSecret && mirror.row.signature_mode !== 'off') {
      const check = checkChatwootSignature(d.raw, header(d, 'x-chatwoot-signature'), header(d, 'x-chatwoot-timestamp'), mirror.webhookSecret, Math.floor(this.clock.now() / 1000));
      if (check !== 'ok') {
        if (mirror.row.signature_mode === 'enforce') return this.#answer('bad_signature', check === 'missing' ? 401 : 403, { error: { code: check === 'missing' ? 'auth.required' : 'forbidden', message: 'Missing or invalid X-Chatwoot-Signature' } });
        this.#metric.inc({ direction: 'from_chatwoot', outcome: 'signature_warning' });
      }
    }
    let json: Json;
    try {
      json = obj(JSON.parse(d.raw.toString('utf8')));
    } catch {
      return this.#answer('invalid_json', 400, { error: { code: 'request.invalid_json', message: 'The body is not JSON' } });
    }
    const skip = ignored(json);
    if (skip) return this.#answer(`ignored_${skip}`, 200, { received: true, ignored: skip });
    const id = newOrderedId();
    const orderKey = str(obj(json.conversation).id) ?? '';
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('webhook_events').values({ id, org_id: mirror.row.org_id, inbox_id: inboxId, platform: 'chatwoot', body: d.raw.toString('utf8'), status: 'received', summary: null, error: null, received_at: isoNow(this.clock), processed_at: null, order_key: orderKey }).execute();
      await this.integrations.enqueue(trx, [{ orgId: mirror.row.org_id, target: CHATWOOT_IN_TARGET, eventName: 'chatwoot.inbound', eventId: id, payload: JSON.stringify({ webhook_event_id: id, inbox_id: inboxId, order_key: orderKey }), idempotencyKey: `cwin:${id}` }]);
    });
    this.integrations.kick();
    return this.#answer('accepted', 200, { received: true });
  }

  /** The outbox handler: one stored Chatwoot delivery. */
  async process(webhookEventId: string, order: { inboxId: string; key: string } | undefined, signal: AbortSignal): Promise<DeliveryResult> {
    // An agent's quick replies go out in the order Chatwoot sent them (ArrivalOrder, per Chatwoot conversation).
    return (await this.#order.run(webhookEventId, order, (id) => this.#processOne(id, signal))) ?? { ok: true };
  }

  async #processOne(webhookEventId: string, signal: AbortSignal): Promise<DeliveryResult> {
    const ev = await this.db.selectFrom('webhook_events').selectAll().where('id', '=', webhookEventId).executeTakeFirst();
    const mirror = ev ? await this.mirrors.open(ev.inbox_id) : undefined;
    if (!ev || !mirror) return { ok: true };
    const json = obj(JSON.parse(ev.body));
    const cw = new ChatwootClient(this.http, { url: mirror.row.url, accountId: Number(mirror.row.account_id), inboxId: Number(mirror.row.cw_inbox_id), token: mirror.token }, this.opts.timeoutMs, signal);
    try {
      const summary = json.event === 'message_updated' ? await this.#deleted(json, mirror) : await this.#created(json, mirror, signal);
      await this.db.updateTable('webhook_events').set({ status: 'processed', summary, error: null, processed_at: isoNow(this.clock) }).where('id', '=', ev.id).execute();
      this.#metric.inc({ direction: 'from_chatwoot', outcome: summary });
      return { ok: true };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await this.db.updateTable('webhook_events').set({ status: 'failed', error: message.slice(0, 500) }).where('id', '=', ev.id).execute();
      if (err instanceof Refused) {
        this.#metric.inc({ direction: 'from_chatwoot', outcome: 'refused' });
        await this.#tellAgents(cw, json, message);
        return { ok: false, permanent: true, error: message };
      }
      this.#metric.inc({ direction: 'from_chatwoot', outcome: 'retry' });
      throw err;
    }
  }

  async #created(json: Json, mirror: OpenMirror, signal: AbortSignal): Promise<string> {
    const inboxId = mirror.row.inbox_id;
    const orgId = mirror.row.org_id;
    const cwMessageId = str(json.id);
    if (!cwMessageId) throw new Refused('the delivery names no message id');
    if (await this.#links.parleyId(inboxId, 'message', cwMessageId)) return 'duplicate';
    const inbox = await this.inboxes.getRow(orgId, inboxId);
    if (!inbox) throw new Refused('the inbox is gone');
    const conversationId = await this.#conversation(json, mirror, inbox.platform);
    const attachments = await this.#attachments(json, orgId, signal);
    const contentAttributes = obj(json.content_attributes);
    const replyCw = str(contentAttributes.in_reply_to);
    const replyToId = replyCw ? await this.#links.parleyId(inboxId, 'message', replyCw) : null;
    let text = str(json.content) ?? '';
    if (WHATSAPP_FAMILY.has(inbox.platform)) text = chatwootToWhatsApp(text);
    const agent = str(obj(json.sender).name);
    if (mirror.row.sign_agent_name === 1 && agent && text) text = `*${agent}:*\n${text}`;
    if (!text && !attachments.length) return 'empty';
    const kind = attachments[0] ? mediaKindOf(attachments[0].contentType) : null;
    try {
      const stored = await this.messages.storeInbound(orgId, conversationId, {
        senderType: 'business',
        senderId: null,
        type: kind === null ? 'text' : kind === 'document' ? 'file' : kind,
        body: text,
        metadata: { chatwoot: { message_id: Number(cwMessageId), conversation_id: Number(obj(json.conversation).id), sender: agent } },
        externalId: null,
        createdAt: isoNow(this.clock),
        replyToId,
        attachmentFileIds: attachments.map((a) => a.id),
        sendOut: true,
        dedupe: { inboxId, externalId: `chatwoot:${cwMessageId}` },
        inTransaction: (trx, row) => this.#links.set(inboxId, 'message', row.id, cwMessageId, null, trx),
      });
      // The customer's messages up to here count as read on the platform (where it can say so).
      await this.messages.signalRead(orgId, conversationId, stored.seq);
    } catch (err) {
      if (err instanceof DuplicateDelivery) return 'duplicate';
      throw err;
    }
    return 'relayed';
  }

  /** An agent deleted a message in Chatwoot: gone in Parley too (a tombstone). */
  async #deleted(json: Json, mirror: OpenMirror): Promise<string> {
    const cwMessageId = str(json.id);
    const parleyId = cwMessageId ? await this.#links.parleyId(mirror.row.inbox_id, 'message', cwMessageId) : null;
    const m = parleyId ? await this.db.selectFrom('messages').selectAll().where('id', '=', parleyId).executeTakeFirst() : undefined;
    if (!m) return 'unknown_message';
    // An agent's message deleted in Chatwoot: deleted on WhatsApp / Telegram too, where they allow it.
    if (m.sender_type !== 'contact' && m.external_id !== null && m.deleted_at === null) await this.messages.deleteOnPlatform(m.org_id, m.id);
    await this.messages.applyPlatformChange(m, { delete: true });
    return 'deleted';
  }

  /**
   * The Parley conversation of a Chatwoot one: linked, else the contact's (linked, or found by the
   * Chatwoot contact's phone — normalized, every Brazilian variant — or identifier), opened.
   */
  async #conversation(json: Json, mirror: OpenMirror, platform: string): Promise<string> {
    const inboxId = mirror.row.inbox_id;
    const orgId = mirror.row.org_id;
    const conv = obj(json.conversation);
    const cwConversationId = str(conv.id);
    if (!cwConversationId) throw new Refused('the delivery names no conversation');
    const linked = await this.#links.parleyId(inboxId, 'conversation', cwConversationId);
    if (linked) {
      const live = await this.db.selectFrom('conversations').select(['id', 'status']).where('id', '=', linked).executeTakeFirst();
      if (live) return live.id;
    }
    const sender = obj(obj(conv.meta).sender);
    const cwContactId = str(sender.id);
    let contactId = cwContactId ? await this.#links.parleyId(inboxId, 'contact', cwContactId) : null;
    if (!contactId) {
      const identifier = str(sender.identifier);
      const phoneText = str(sender.phone_number);
      const phone = phoneText ? normalizePhone(phoneText) : null;
      if (phone && !phone.ok) throw new Refused(`phone.invalid: the Chatwoot contact’s phone number ${phoneText} is not valid (${phone.reason})`);
      let externalId: string | null = null;
      if (identifier && platform !== 'whatsapp' && identifier.startsWith(`${platform}:`)) externalId = identifier.slice(platform.length + 1);
      else if (identifier && (platform === 'codechat' || platform === 'evolution') && identifier.endsWith('@s.whatsapp.net')) externalId = identifier;
      else if (phone?.ok && WHATSAPP_FAMILY.has(platform)) {
        const digits = phone.e164.slice(1);
        externalId = platform === 'whatsapp' ? digits : `${digits}@s.whatsapp.net`;
      }
      if (!externalId) throw new Refused(`contact.unknown: cannot tell who to send to on ${platform} (the Chatwoot contact has no usable phone number or identifier)`);
      const { contact } = await this.contacts.resolve(orgId, inboxId, externalId, { name: str(sender.name), phone: phone?.ok ? phone.e164 : null });
      contactId = contact.id;
      if (cwContactId) await this.#links.set(inboxId, 'contact', contactId, cwContactId, str(obj(conv.contact_inbox).source_id));
    }
    const conversationId = await this.support.openForContact(orgId, inboxId, contactId);
    await this.#links.set(inboxId, 'conversation', conversationId, cwConversationId);
    return conversationId;
  }

  /** The message's attachments, downloaded from their ActiveStorage URLs into file storage. */
  async #attachments(json: Json, orgId: string, signal: AbortSignal): Promise<Array<{ id: string; contentType: string }>> {
    const top = Array.isArray(json.attachments) ? json.attachments : [];
    const nested = (Array.isArray(obj(json.conversation).messages) ? (obj(json.conversation).messages as unknown[]) : []).map(obj).find((m) => str(m.id) === str(json.id));
    const list = (top.length ? top : Array.isArray(nested?.attachments) ? (nested.attachments as unknown[]) : []).map(obj).filter((a) => str(a.data_url));
    const out: Array<{ id: string; contentType: string }> = [];
    for (const [i, a] of list.entries()) {
      let bytes: Buffer;
      try {
        bytes = (await safeGet(str(a.data_url)!, { timeoutMs: this.opts.timeoutMs, allowPrivate: this.opts.allowPrivate, maxBytes: this.opts.maxBytes, signal })).body;
      } catch (err) {
        if (err instanceof ResponseTooLargeError) throw new Refused(`attachment ${i + 1} is larger than ${this.opts.maxBytes} bytes`);
        if (err instanceof UnsafeUrlError) throw new Refused(`attachment ${i + 1}: ${err.message}`);
        if (err instanceof HttpStatusError && err.status >= 400 && err.status < 500 && err.status !== 429) throw new Refused(`attachment ${i + 1} could not be downloaded (HTTP ${err.status})`);
        throw err;
      }
      const name = decodeURIComponent(new URL(str(a.data_url)!).pathname.split('/').pop() ?? '') || `attachment-${i + 1}${a.extension ? `.${str(a.extension)}` : ''}`;
      const file = await this.files.storeFromPlatform(orgId, { filename: name, bytes });
      out.push({ id: file.id, contentType: file.content_type });
    }
    return out;
  }

  /** A message that cannot go out: the agents hear why, in a private note (and the message is marked failed). */
  async #tellAgents(cw: ChatwootClient, json: Json, reason: string): Promise<void> {
    const conversation = Number(obj(json.conversation).id);
    const message = Number(json.id);
    if (!Number.isInteger(conversation)) return;
    try {
      if (Number.isInteger(message)) await cw.setMessageStatus(conversation, message, 'failed', reason).catch(() => undefined);
      await cw.createMessage(conversation, { content: `⚠️ Parley could not send this message: ${reason}`, messageType: 'outgoing', private: true, sourceId: `${OUR_SOURCE_PREFIX}note:${newId()}` });
    } catch (err) {
      if (!(err instanceof ChatwootError)) throw err;
    }
  }

  #answer(outcome: string, status: number, body: Json): { status: number; body: Json } {
    this.#metric.inc({ direction: 'from_chatwoot', outcome });
    return { status, body };
  }
}

/**
 * What the relay does not send out (CONNECTORS.md §5.1, as Evolution's integration filters):
 * other events, private notes, anything but outgoing/template messages, and what the mirror wrote
 * itself (its source_id). Deletions (message_updated with content_attributes.deleted) pass.
 */
export function ignored(json: Json): string | null {
  const event = json.event;
  if (event === 'message_updated') return obj(json.content_attributes).deleted ? null : 'event';
  if (event !== 'message_created') return 'event';
  if (json.private === true) return 'private';
  const type = json.message_type;
  if (!(type === 'outgoing' || type === 1 || type === 'template' || type === 3)) return 'not_outgoing';
  const sourceId = str(json.source_id) ?? str(obj((obj(json.conversation).messages as unknown[] | undefined)?.[0]).source_id);
  if (sourceId?.startsWith(OUR_SOURCE_PREFIX) || sourceId?.startsWith('WAID:')) return 'echo';
  return null;
}
