import type { Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../../../config/config.ts';
import type { Clock } from '../../../platform/clock.ts';
import { TARGET_CONTENT_TYPE, transcode, type TranscodeTarget } from '../../../platform/ffmpeg.ts';
import type { DB } from '../../../storage/schema.ts';
import type { FileDto } from '../../files/files.schemas.ts';
import type { FilesService } from '../../files/files.service.ts';
import type { InboxesService } from '../../inboxes/inboxes.service.ts';
import type { DeliveryResult } from '../../integrations/dispatcher.ts';
import type { IntegrationEvents } from '../../integrations/events.ts';
import type { MessagesService, PlatformSignal } from '../../messages/messages.service.ts';
import { mediaKindOf, sendCodechatMedia, sendEvolutionMedia, sendMetaMedia, sendTelegramMedia, sendWhatsAppMedia, type MediaKind, type MediaSender } from './media-senders.ts';
import { sendCodechat, sendEvolution, sendMeta, sendTelegram, sendWhatsApp, type SendContext, type Sender, type SendResult } from './senders.ts';
import { sendSignal } from './signals.ts';
import { newId } from '../../../platform/ids.ts';
import { KeyedQueue } from '../../../platform/keyed-queue.ts';

/** The outbox target of replies going out to platforms. */
export const PLATFORM_SEND_TARGET = 'platform_send';
/** The outbox target of reactions and read receipts going out to platforms. */
export const PLATFORM_SIGNAL_TARGET = 'platform_signal';

/** WhatsApp's customer-service window: free-form replies only within 24 h of the customer's last message. */
const WHATSAPP_WINDOW_MS = 24 * 3600 * 1000;

/** A message's platform_ref (Codechat v1's row id), from its metadata. */
function platformRef(metadata: string | null): string | undefined {
  const ref = metadata ? (JSON.parse(metadata) as { platform_ref?: unknown }).platform_ref : undefined;
  return typeof ref === 'string' ? ref : undefined;
}

/** How far back a send looks for earlier messages of its conversation still waiting to go. */
const ORDER_WINDOW = 50;

/** The largest transcoded voice note (WhatsApp's audio limit is 16 MB). */
const VOICE_MAX_BYTES = 16 * 1024 * 1024;

interface PlatformSender {
  send: Sender;
  sendMedia: MediaSender;
  /** What audio attachments are transcoded to, to go out as a voice note (CONNECTORS.md §9.2). */
  voice: TranscodeTarget;
  /** Whether a file of this kind carries a caption; else the text goes out first, as its own message. */
  caption: (kind: MediaKind) => boolean;
  base: (c: Config['platformApis']) => string;
}

const SENDERS: Record<string, PlatformSender> = {
  whatsapp: { send: sendWhatsApp, sendMedia: sendWhatsAppMedia, voice: 'ogg_opus', caption: (k) => k !== 'voice' && k !== 'audio', base: (c) => c.whatsapp },
  telegram: { send: sendTelegram, sendMedia: sendTelegramMedia, voice: 'ogg_opus', caption: () => true, base: (c) => c.telegram },
  instagram: { send: sendMeta, sendMedia: sendMetaMedia, voice: 'm4a_aac', caption: () => false, base: (c) => c.meta },
  messenger: { send: sendMeta, sendMedia: sendMetaMedia, voice: 'm4a_aac', caption: () => false, base: (c) => c.meta },
  evolution: { send: sendEvolution, sendMedia: sendEvolutionMedia, voice: 'ogg_opus', caption: (k) => k !== 'voice', base: () => '' },
  codechat: { send: sendCodechat, sendMedia: sendCodechatMedia, voice: 'ogg_opus', caption: (k) => k !== 'voice', base: () => '' },
};

/** Where a failed voice-note transcoding is logged (a pino logger fits). */
export interface OutboundLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}

/**
 * Replies out (issue 6): a staff message in a support conversation of a platform inbox is queued
 * in the outbox in its own transaction (status `pending`), then sent by the dispatcher through the
 * platform's send API with retries and backoff; it becomes `sent` with the platform's id (statuses
 * then move it on: delivered, read), or `failed` with the platform's error. Private notes never go
 * out (the messages service does not queue them).
 */
export class OutboundService {
  readonly #metric: Counter<'platform' | 'outcome'>;
  readonly #order = new KeyedQueue();

  constructor(
    private readonly db: Kysely<DB>,
    private readonly inboxes: InboxesService,
    private readonly messages: MessagesService,
    private readonly integrations: IntegrationEvents,
    private readonly apis: Config['platformApis'],
    private readonly clock: Clock,
    registry: Registry,
    private readonly files: FilesService,
    private readonly log?: OutboundLog,
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
    await this.integrations.enqueue(trx, [{ orgId, target: PLATFORM_SEND_TARGET, eventName: `send.${inbox.platform}`, eventId: messageId, payload: JSON.stringify({ message_id: messageId, conversation_id: conversationId }), idempotencyKey: `send:${messageId}` }]);
    return true;
  }

  /**
   * An agent reacted to (or removed a reaction from) a customer's platform message, or read the
   * conversation up to a message: queued for the platform (after the change is committed).
   */
  async enqueueSignal(orgId: string, messageId: string, signal: PlatformSignal): Promise<void> {
    const m = await this.db
      .selectFrom('messages as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .innerJoin('inboxes as i', 'i.id', 'c.inbox_id')
      .select(['m.id', 'm.external_id', 'm.sender_type', 'm.metadata', 'i.platform'])
      .where('m.id', '=', messageId)
      .where('m.org_id', '=', orgId)
      .executeTakeFirst();
    // Reactions and reads are about the customer's messages; a delete about ours.
    const ours = signal.kind === 'delete';
    if (!m || m.external_id === null || (m.sender_type === 'contact') === ours || !(m.platform in SENDERS)) return;
    const id = newId();
    await this.db.transaction().execute((trx) =>
      this.integrations.enqueue(trx, [{ orgId, target: PLATFORM_SIGNAL_TARGET, eventName: `signal.${signal.kind}`, eventId: id, payload: JSON.stringify({ message_id: messageId, ...signal, ...(signal.kind === 'delete' && platformRef(m.metadata) ? { ref: platformRef(m.metadata) } : {}) }), idempotencyKey: `signal:${id}` }]),
    );
  }

  /** The outbox handler of signals (reactions, read). */
  async deliverSignal(payload: { message_id: string; kind: PlatformSignal['kind']; emoji?: string | null; ref?: string }, signal: AbortSignal): Promise<DeliveryResult> {
    const m = await this.db.selectFrom('messages').select(['id', 'external_id', 'conversation_id', 'org_id']).where('id', '=', payload.message_id).executeTakeFirst();
    const conv = m ? await this.db.selectFrom('conversations').select(['inbox_id', 'contact_id']).where('id', '=', m.conversation_id).executeTakeFirst() : undefined;
    const inbox = m && conv?.inbox_id ? await this.inboxes.getRow(m.org_id, conv.inbox_id) : undefined;
    const identity = inbox && conv?.contact_id ? await this.db.selectFrom('contact_identities').select('external_id').where('inbox_id', '=', inbox.id).where('contact_id', '=', conv.contact_id).executeTakeFirst() : undefined;
    if (!m?.external_id || !inbox || !identity) return { ok: false, permanent: true, error: 'nothing to signal' };
    const platform = SENDERS[inbox.platform];
    const ctx = { base: platform ? platform.base(this.apis) : '', credentials: this.inboxes.credentials(inbox), timeoutMs: this.apis.timeoutMs, signal };
    const r = await sendSignal(
      inbox.platform,
      ctx,
      payload.kind === 'reaction'
        ? { kind: 'reaction', to: identity.external_id, targetExternalId: m.external_id, emoji: payload.emoji ?? null }
        : payload.kind === 'delete'
          ? { kind: 'delete', to: identity.external_id, targetExternalId: m.external_id, ...(payload.ref ? { targetRef: payload.ref } : {}) }
          : { kind: 'read', to: identity.external_id, lastExternalId: m.external_id },
    );
    if (r.ok === 'unsupported' || r.ok === true) {
      this.#metric.inc({ platform: inbox.platform, outcome: r.ok === true ? `${payload.kind}_sent` : `${payload.kind}_unsupported` });
      return { ok: true };
    }
    return { ok: false, error: `${r.code ?? ''} ${r.error}`.trim(), permanent: !r.retryable };
  }

  /**
   * The outbox handler: send one message, never before the conversation's earlier messages still
   * waiting to go (the outbox runs jobs concurrently; an agent's quick replies must not swap places
   * on the customer's phone). One conversation's sends run one at a time in this process, in the
   * order the dispatcher started them (oldest first); an earlier message still pending elsewhere
   * (another process, or waiting for a retry) makes this one wait for its own retry — except on its
   * last attempt, when it goes anyway.
   */
  async deliver(messageId: string, conversationId: string | undefined, signal: AbortSignal, lastAttempt: boolean): Promise<DeliveryResult> {
    const key = conversationId ?? (await this.db.selectFrom('messages').select('conversation_id').where('id', '=', messageId).executeTakeFirst())?.conversation_id;
    if (key === undefined) return { ok: true };
    return this.#order.run(key, async () => {
      const m = await this.db.selectFrom('messages').select(['seq', 'delivery_status']).where('id', '=', messageId).executeTakeFirst();
      if (!m || m.delivery_status !== 'pending') return { ok: true };
      const earlier = await this.db
        .selectFrom('messages')
        .select('id')
        .where('conversation_id', '=', key)
        .where('seq', '>=', Number(m.seq) - ORDER_WINDOW)
        .where('seq', '<', Number(m.seq))
        .where('delivery_status', '=', 'pending')
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (earlier && !lastAttempt) return { ok: false, error: 'waiting for an earlier message of the conversation to go out' };
      return this.#deliverOne(messageId, signal, lastAttempt);
    });
  }

  async #deliverOne(messageId: string, signal: AbortSignal, lastAttempt: boolean): Promise<DeliveryResult> {
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
    const replied = replyTo ? await this.db.selectFrom('messages').select(['external_id', 'metadata']).where('id', '=', replyTo).executeTakeFirst() : undefined;
    // Codechat v1 quotes by its own row id (kept as platform_ref); the others by the platform's id.
    const replyExternal = (inbox.platform === 'codechat' ? platformRef(replied?.metadata ?? null) : replied?.external_id) ?? undefined;
    const ctx: SendContext = { base: platform.base(this.apis), credentials: this.inboxes.credentials(inbox), timeoutMs: this.apis.timeoutMs, signal };
    const r =
      m.attachment_count > 0
        ? await this.#sendWithFiles(m, inbox.platform, ctx, identity.external_id, replyExternal)
        : await platform.send(ctx, { to: identity.external_id, text: m.body, ...(replyExternal ? { replyToExternalId: replyExternal } : {}) });
    if (r.ok) {
      const current = r.ref ? await this.db.selectFrom('messages').select('metadata').where('id', '=', m.id).executeTakeFirst() : undefined;
      const withRef = r.ref ? { metadata: JSON.stringify({ ...(current?.metadata ? (JSON.parse(current.metadata) as Record<string, unknown>) : {}), platform_ref: r.ref }) } : {};
      await this.db.updateTable('messages').set({ external_id: r.externalId, ...withRef }).where('id', '=', m.id).execute();
      await this.messages.applyPlatformChange({ ...m, external_id: r.externalId }, { deliveryStatus: 'sent', deliveryError: null });
      this.#metric.inc({ platform: inbox.platform, outcome: 'sent' });
      return { ok: true };
    }
    const error = `${r.code ?? ''} ${r.error}`.trim();
    if (!r.retryable || lastAttempt) return this.#fail(m, inbox.platform, error, true);
    this.#metric.inc({ platform: inbox.platform, outcome: 'retry' });
    return { ok: false, error };
  }

  /**
   * A message with files: each file is one platform message, the first one captioned with the body
   * (or, where that kind takes no caption, the body goes first as a text). The ids of the parts
   * sent are kept in `metadata.platform_parts`, so a retry after a failed part sends only the rest;
   * the message's external id is the first part's.
   */
  async #sendWithFiles(m: { id: string; org_id: string; body: string; metadata: string | null }, platformName: string, ctx: SendContext, to: string, replyTo: string | undefined): Promise<SendResult> {
    const platform = SENDERS[platformName]!;
    const files = (await this.files.attachmentsOf(m.org_id, [m.id])).get(m.id) ?? [];
    const metadata = m.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : {};
    const done = Array.isArray(metadata.platform_parts) ? (metadata.platform_parts as string[]) : [];
    let firstRef = typeof metadata.platform_ref === 'string' ? metadata.platform_ref : undefined;
    const firstKind = files[0] ? mediaKindOf(files[0].content_type) : 'document';
    const text = m.body.trim() === '' ? undefined : m.body;
    const captioned = text !== undefined && files.length > 0 && platform.caption(firstKind === 'audio' ? 'voice' : firstKind);
    const parts: Array<(reply: string | undefined) => Promise<SendResult>> = [];
    if (text !== undefined && !captioned) parts.push((reply) => platform.send(ctx, { to, text, ...(reply ? { replyToExternalId: reply } : {}) }));
    files.forEach((f, i) => parts.push((reply) => this.#sendFile(m, f, platformName, ctx, { to, caption: i === 0 && captioned ? text : undefined, reply })));
    for (let i = done.length; i < parts.length; i++) {
      const r = await parts[i]!(i === 0 ? replyTo : undefined);
      if (!r.ok) return r;
      done.push(r.externalId);
      if (i === 0 && r.ref) firstRef = r.ref;
      await this.db.updateTable('messages').set({ metadata: JSON.stringify({ ...metadata, platform_parts: done, ...(firstRef ? { platform_ref: firstRef } : {}) }) }).where('id', '=', m.id).execute();
    }
    return done[0] ? { ok: true, externalId: done[0], ...(firstRef ? { ref: firstRef } : {}) } : { ok: false, retryable: false, error: 'nothing to send' };
  }

  /** One file out; audio is transcoded to the platform's voice-note format first, or sent as it is when that fails. */
  async #sendFile(m: { id: string; org_id: string }, f: FileDto, platformName: string, ctx: SendContext, opts: { to: string; caption: string | undefined; reply: string | undefined }): Promise<SendResult> {
    const platform = SENDERS[platformName]!;
    const bytes = await this.files.bytesOf(m.org_id, f.id);
    if (!bytes) return { ok: false, retryable: false, error: `the attached file ${f.id} is missing` };
    let part = { kind: mediaKindOf(f.content_type) as MediaKind, bytes, contentType: f.content_type, filename: f.filename };
    if (part.kind === 'audio') {
      try {
        const voice = await transcode(bytes, platform.voice, { timeoutMs: this.apis.timeoutMs, maxOutputBytes: VOICE_MAX_BYTES });
        const ext = platform.voice === 'ogg_opus' ? 'ogg' : platform.voice === 'm4a_aac' ? 'm4a' : 'mp3';
        part = { kind: 'voice', bytes: voice, contentType: TARGET_CONTENT_TYPE[platform.voice], filename: `${f.filename.replace(/\.[^.]*$/, '') || 'voice'}.${ext}` };
      } catch (err) {
        this.log?.warn({ err, platform: platformName, message_id: m.id, file_id: f.id, content_type: f.content_type }, 'voice note transcoding failed; sending the original audio');
        this.#metric.inc({ platform: platformName, outcome: 'transcode_failed' });
      }
    }
    return platform.sendMedia(ctx, { to: opts.to, ...part, ...(opts.caption ? { caption: opts.caption } : {}), ...(opts.reply ? { replyToExternalId: opts.reply } : {}) });
  }

  async #fail(m: { id: string; org_id: string; conversation_id: string } & Parameters<MessagesService['applyPlatformChange']>[0], platform: string, error: string, permanent: boolean): Promise<DeliveryResult> {
    await this.messages.applyPlatformChange(m, { deliveryStatus: 'failed', deliveryError: error });
    await this.db.transaction().execute((trx) => this.integrations.record(trx, m.org_id, 'chat.message.status', { conversation_id: m.conversation_id, message_id: m.id, status: 'failed', error }));
    this.#metric.inc({ platform, outcome: 'failed' });
    return { ok: false, error, permanent };
  }
}
