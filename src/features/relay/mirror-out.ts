import type { Kysely } from 'kysely';
import { PreparedQuery } from '../../storage/prepared.ts';
import { Counter, type Registry } from 'prom-client';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { TARGET_CONTENT_TYPE, transcode } from '../../platform/ffmpeg.ts';
import type { DB } from '../../storage/schema.ts';
import type { FilesService } from '../files/files.service.ts';
import type { DeliveryResult } from '../integrations/dispatcher.ts';
import type { IntegrationEvents } from '../integrations/events.ts';
import type { OutboxRow } from '../integrations/outbox.repo.ts';
import type { NeutralMessage } from '../connectors/neutral.ts';
import { phoneVariants } from '../contacts/phone.ts';
import type { MessageRow } from '../messages/messages.repo.ts';
import type { MirrorChange } from '../messages/messages.service.ts';
import { ChatwootClient, ChatwootError, type CwAttachmentIn, type Requester } from './chatwoot-client.ts';
import { Links } from './links.ts';
import { whatsAppToChatwoot } from './markdown.ts';
import type { MirrorsService, OpenMirror } from './mirrors.service.ts';

/** The outbox target that copies Parley's side of a mirrored inbox into Chatwoot. */
export const CHATWOOT_MIRROR_TARGET = 'chatwoot_mirror';

/** The source_id prefix of what the mirror writes in Chatwoot: its webhook echoes are recognised by it. */
export const OUR_SOURCE_PREFIX = 'parley:';

/** Messages mirrored per job before it hands over to a follow-up job (stays well inside the claim lease). */
const BATCH = 25;
/** Platforms that write WhatsApp's formatting (converted to and from Chatwoot's Markdown). */
export const WHATSAPP_FAMILY = new Set(['whatsapp', 'codechat', 'evolution']);


type Job = { kind: 'messages'; conversation_id: string; inbox_id: string; seq: number } | { kind: 'change'; message_id: string; inbox_id: string; change: MirrorChange };

export interface RelayLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface MirrorOptions {
  /** One Chatwoot request's deadline. */
  timeoutMs: number;
  /** How long a job may hold a conversation's cursor (the outbox claim lease). */
  lockMs: number;
  /** Largest voice note transcoded for Chatwoot. */
  maxAudioBytes: number;
}

/** The mirrored inbox of a conversation, if its inbox has a mirror. */
const MIRROR_OF = new PreparedQuery<[conversationId: string], { inbox_id: string }>((db: Kysely<DB>, param) =>
  db.selectFrom('conversations as c').innerJoin('chatwoot_mirrors as cm', 'cm.inbox_id', 'c.inbox_id').select('cm.inbox_id').where('c.id', '=', param(0)),
);
/** (Asked for every new message of a support conversation: prepared, see storage/prepared.ts.) */
const mirrorOf = (db: Kysely<DB>, conversationId: string) => MIRROR_OF.execute(db, [conversationId]).then((r) => r[0]);

/** Did the message come from Chatwoot (an agent's reply there)? Such messages are not mirrored back. */
export function messageFromChatwoot(m: Pick<MessageRow, 'metadata'>): boolean {
  return m.metadata !== null && m.metadata.includes('"chatwoot"') && (JSON.parse(m.metadata) as Record<string, unknown>).chatwoot !== undefined;
}

/** Relay counters: chat_relay_total{direction, outcome}. */
export function relayCounter(registry: Registry): Counter<'direction' | 'outcome'> {
  const existing = registry.getSingleMetric('chat_relay_total');
  if (existing) return existing as Counter<'direction' | 'outcome'>;
  return new Counter({ name: 'chat_relay_total', help: 'Chatwoot relay: messages and changes mirrored to Chatwoot (to_chatwoot) and Chatwoot replies relayed out (from_chatwoot), by outcome', labelNames: ['direction', 'outcome'] as const, registers: [registry] });
}

/**
 * Parley → Chatwoot (issue 7). Every message of a mirrored inbox's conversation — the contact's,
 * echoes of what the business sent from the phone, Parley agents' replies and private notes — is
 * copied into the Chatwoot API inbox: the contact found by phone (every Brazilian variant) or
 * identifier, else created; one open Chatwoot conversation per Parley conversation; the message
 * with its attachments (OGG/Opus voice notes transcoded to MP3 for browsers), replies mapped.
 *
 * Order: a conversation's messages go in seq order whatever order their jobs run in — each job
 * takes the conversation's cursor (a lease in chatwoot_cursors) and mirrors everything after it.
 * Exactly once, as far as Chatwoot allows: a message's link row is claimed before it is posted;
 * a retry after a lost answer looks for the message by its source_id before posting again.
 * Chatwoot down: the job fails and the outbox retries it with backoff; nothing is skipped.
 */
export class ChatwootMirror {
  readonly #links: Links;
  readonly #metric: Counter<'direction' | 'outcome'>;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly mirrors: MirrorsService,
    private readonly files: FilesService,
    private readonly integrations: IntegrationEvents,
    private readonly http: Requester,
    private readonly opts: MirrorOptions,
    private readonly clock: Clock,
    registry: Registry,
    private readonly log?: RelayLog,
  ) {
    this.#links = new Links(db, clock);
    this.#metric = relayCounter(registry);
  }

  /** In a support message's transaction: queue its mirroring when the conversation's inbox has a mirror. */
  async enqueueMessage(trx: Kysely<DB>, orgId: string, conversationId: string, message: { id: string; seq: number }): Promise<void> {
    const mirror = await mirrorOf(trx, conversationId);
    if (!mirror) return;
    // The conversation's cursor starts before its first message mirrored — made here, in the
    // transaction that numbers the message (they commit in seq order per conversation), so a job
    // of a later message that runs first cannot start the cursor past an earlier one.
    await trx
      .insertInto('chatwoot_cursors')
      .values({ conversation_id: conversationId, inbox_id: mirror.inbox_id, mirrored_seq: Number(message.seq) - 1, locked_until: null })
      .onConflict((oc) => oc.column('conversation_id').doNothing())
      .execute();
    const job: Job = { kind: 'messages', conversation_id: conversationId, inbox_id: mirror.inbox_id, seq: Number(message.seq) };
    await this.integrations.enqueue(trx, [{ orgId, target: CHATWOOT_MIRROR_TARGET, eventName: 'chatwoot.mirror', eventId: message.id, payload: JSON.stringify(job), idempotencyKey: `cw:${message.id}` }]);
  }

  /** A message's media download settled: its conversation's mirroring goes on from it. */
  async enqueueAfterMedia(orgId: string, messageId: string): Promise<void> {
    const m = await this.db.selectFrom('messages').select(['id', 'seq', 'conversation_id']).where('id', '=', messageId).executeTakeFirst();
    if (!m) return;
    await this.db.transaction().execute(async (trx) => {
      const mirror = await mirrorOf(trx, m.conversation_id);
      if (!mirror) return;
      const job: Job = { kind: 'messages', conversation_id: m.conversation_id, inbox_id: mirror.inbox_id, seq: Number(m.seq) };
      await this.integrations.enqueue(trx, [{ orgId, target: CHATWOOT_MIRROR_TARGET, eventName: 'chatwoot.mirror', eventId: m.id, payload: JSON.stringify(job), idempotencyKey: `cw:${m.id}:media` }]);
    });
    this.integrations.kick();
  }

  /** After a change to a mirrored message committed (platform edits, deletes, reactions, statuses): queue it for Chatwoot. */
  async enqueueChange(m: Pick<MessageRow, 'id' | 'org_id' | 'conversation_id'>, change: MirrorChange, key: string): Promise<void> {
    const mirror = await mirrorOf(this.db, m.conversation_id);
    if (!mirror) return;
    const job: Job = { kind: 'change', message_id: m.id, inbox_id: mirror.inbox_id, change };
    await this.db.transaction().execute((trx) =>
      this.integrations.enqueue(trx, [{ orgId: m.org_id, target: CHATWOOT_MIRROR_TARGET, eventName: `chatwoot.${change.kind}`, eventId: m.id, payload: JSON.stringify(job), idempotencyKey: `cw:${m.id}:${key}` }]),
    );
    this.integrations.kick();
  }

  /** The outbox handler. */
  async deliver(row: OutboxRow, signal: AbortSignal): Promise<DeliveryResult> {
    const job = JSON.parse(row.payload) as Job;
    const mirror = await this.mirrors.open(job.inbox_id);
    if (!mirror) return { ok: true }; // detached meanwhile: nothing to mirror
    const cw = new ChatwootClient(this.http, { url: mirror.row.url, accountId: Number(mirror.row.account_id), inboxId: Number(mirror.row.cw_inbox_id), token: mirror.token }, this.opts.timeoutMs, signal);
    try {
      return job.kind === 'messages' ? await this.#messages(job, mirror, cw, row.org_id) : await this.#change(job, cw);
    } catch (err) {
      if (err instanceof ChatwootError) {
        this.#metric.inc({ direction: 'to_chatwoot', outcome: err.retryable ? 'retry' : 'failed' });
        return { ok: false, error: err.message, permanent: !err.retryable };
      }
      throw err;
    }
  }

  // --- new messages, in order -------------------------------------------------------------------

  async #messages(job: Extract<Job, { kind: 'messages' }>, mirror: OpenMirror, cw: ChatwootClient, orgId: string): Promise<DeliveryResult> {
    const cursor = await this.#lock(job);
    if (cursor === null) {
      // Another job holds the conversation: it mirrors ours too, unless it is already past it.
      const at = await this.db.selectFrom('chatwoot_cursors').select('mirrored_seq').where('conversation_id', '=', job.conversation_id).executeTakeFirst();
      return at && Number(at.mirrored_seq) >= job.seq ? { ok: true } : { ok: false, error: 'the conversation is being mirrored by another job; retrying' };
    }
    let done = cursor;
    const failures: string[] = [];
    try {
      const batch = await this.db.selectFrom('messages').selectAll().where('conversation_id', '=', job.conversation_id).where('seq', '>', done).orderBy('seq').limit(BATCH).execute();
      for (const m of batch) {
        const meta = m.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : {};
        const media = meta.media as { download?: string; error?: string } | undefined;
        // The media job queues this conversation again when the download is done (or given up).
        if (media?.download === 'pending') break;
        if (m.deleted_at === null && !messageFromChatwoot(m) && m.sender_type !== 'system') {
          try {
            await this.#post(m, meta, mirror, cw, orgId);
            this.#metric.inc({ direction: 'to_chatwoot', outcome: 'mirrored' });
          } catch (err) {
            // Chatwoot refused this one message (4xx): it is reported, the conversation goes on.
            if (!(err instanceof ChatwootError) || err.retryable) throw err;
            failures.push(`message ${m.id}: ${err.message}`);
            this.#metric.inc({ direction: 'to_chatwoot', outcome: 'failed' });
          }
        }
        done = Number(m.seq);
        await this.db.updateTable('chatwoot_cursors').set({ mirrored_seq: done }).where('conversation_id', '=', job.conversation_id).execute();
      }
      if (batch.length === BATCH && done > cursor) await this.#followUp(job, orgId, done);
    } finally {
      await this.db.updateTable('chatwoot_cursors').set({ locked_until: null }).where('conversation_id', '=', job.conversation_id).execute();
    }
    return failures.length ? { ok: false, permanent: true, error: failures.join('; ').slice(0, 1000) } : { ok: true };
  }

  /** Take the conversation's cursor (normally made with its first message; else at the job's message). Null when held. */
  async #lock(job: Extract<Job, { kind: 'messages' }>): Promise<number | null> {
    await this.db
      .insertInto('chatwoot_cursors')
      .values({ conversation_id: job.conversation_id, inbox_id: job.inbox_id, mirrored_seq: job.seq - 1, locked_until: null })
      .onConflict((oc) => oc.column('conversation_id').doNothing())
      .execute();
    const now = this.clock.now();
    const got = await this.db
      .updateTable('chatwoot_cursors')
      .set({ locked_until: new Date(now + this.opts.lockMs).toISOString() })
      .where('conversation_id', '=', job.conversation_id)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', new Date(now).toISOString())]))
      .returning('mirrored_seq')
      .executeTakeFirst();
    return got ? Number(got.mirrored_seq) : null;
  }

  async #followUp(job: Extract<Job, { kind: 'messages' }>, orgId: string, seq: number): Promise<void> {
    await this.db.transaction().execute((trx) =>
      this.integrations.enqueue(trx, [{ orgId, target: CHATWOOT_MIRROR_TARGET, eventName: 'chatwoot.mirror', eventId: job.conversation_id, payload: JSON.stringify({ ...job, seq: seq + 1 }), idempotencyKey: `cw:${job.conversation_id}:after:${seq}` }]),
    );
  }

  /** One message into Chatwoot (its contact and conversation made first when needed). */
  async #post(m: MessageRow, meta: Record<string, unknown>, mirror: OpenMirror, cw: ChatwootClient, orgId: string): Promise<void> {
    const inboxId = mirror.row.inbox_id;
    const claim = await this.#links.claim(inboxId, 'message', m.id);
    if (claim.cwId !== null) return; // mirrored before (a repeated delivery)
    const sourceId = `${OUR_SOURCE_PREFIX}${m.id}`;
    const conversation = await this.#conversation(m.conversation_id, mirror, cw, orgId);
    if (claim.existed) {
      // An earlier attempt may have posted it and lost the answer: look before posting again.
      const found = (await cw.recentMessages(conversation)).find((x) => x.sourceId === sourceId);
      if (found) return this.#links.set(inboxId, 'message', m.id, String(found.id));
    }
    const content = await this.#content(m, meta, inboxId);
    const replyTo = typeof meta.reply_to === 'string' ? await this.#links.cwId(inboxId, 'message', meta.reply_to) : null;
    const attachments = m.attachment_count > 0 ? await this.#attachments(orgId, m.id) : [];
    const payload = {
      content,
      messageType: m.sender_type === 'contact' ? ('incoming' as const) : ('outgoing' as const),
      private: m.private === 1,
      sourceId,
      ...(replyTo ? { contentAttributes: { in_reply_to: Number(replyTo) } } : {}),
      ...(attachments.length ? { attachments } : {}),
    };
    let id: number;
    try {
      id = await cw.createMessage(conversation, payload);
    } catch (err) {
      // The Chatwoot conversation was deleted there: make a new one, once.
      if (!(err instanceof ChatwootError) || err.status !== 404) throw err;
      await this.#links.drop(inboxId, 'conversation', m.conversation_id);
      id = await cw.createMessage(await this.#conversation(m.conversation_id, mirror, cw, orgId), payload);
    }
    await this.#links.set(inboxId, 'message', m.id, String(id));
  }

  /** The Chatwoot conversation of a Parley conversation: linked, else the contact's open one in our inbox, else a new one. */
  async #conversation(conversationId: string, mirror: OpenMirror, cw: ChatwootClient, orgId: string): Promise<number> {
    const inboxId = mirror.row.inbox_id;
    const known = await this.#links.cwId(inboxId, 'conversation', conversationId);
    if (known) return Number(known);
    const contact = await this.#contact(conversationId, mirror, cw, orgId);
    const open = (await cw.contactConversations(contact.id)).find((c) => c.inboxId === Number(mirror.row.cw_inbox_id) && c.status !== 'resolved');
    const id = open ? open.id : await cw.createConversation(contact.sourceId ?? (await cw.contactInbox(contact.id)), contact.id);
    await this.#links.set(inboxId, 'conversation', conversationId, String(id));
    return id;
  }

  /**
   * The Chatwoot contact of a conversation's contact: linked, else found by phone (every variant of
   * a Brazilian mobile, CONNECTORS.md §8) or identifier, else created. Phones are E.164 already
   * (contacts are normalized when they are made); a contact without a valid phone goes by
   * identifier alone, never with a broken number.
   */
  async #contact(conversationId: string, mirror: OpenMirror, cw: ChatwootClient, orgId: string): Promise<{ id: number; sourceId: string | null }> {
    const inboxId = mirror.row.inbox_id;
    const conv = await this.db
      .selectFrom('conversations as c')
      .innerJoin('contacts as k', 'k.id', 'c.contact_id')
      .leftJoin('contact_identities as ci', (j) => j.onRef('ci.contact_id', '=', 'k.id').on('ci.inbox_id', '=', inboxId))
      .innerJoin('inboxes as i', 'i.id', 'c.inbox_id')
      .select(['k.id', 'k.name', 'k.phone', 'ci.external_id', 'i.platform'])
      .where('c.id', '=', conversationId)
      .where('c.org_id', '=', orgId)
      .executeTakeFirst();
    if (!conv) throw new ChatwootError('the conversation has no contact to mirror', null, false);
    const link = await this.#links.get(inboxId, 'contact', conv.id);
    if (link?.cw_id) return { id: Number(link.cw_id), sourceId: link.source_id };
    const identifier = conv.external_id ? (WHATSAPP_FAMILY.has(conv.platform) && conv.external_id.includes('@') ? conv.external_id : `${conv.platform}:${conv.external_id}`) : null;
    const phones = conv.phone ? phoneVariants(conv.phone) : [];
    let found = (await cw.findContacts(phones, identifier))[0];
    if (!found) {
      const name = conv.name ?? conv.phone ?? identifier ?? 'Contact';
      try {
        found = await cw.createContact({ name, phone_number: conv.phone, identifier });
      } catch (err) {
        // Made meanwhile (another conversation of the same person, or by hand): find it again.
        if (!(err instanceof ChatwootError) || err.status !== 422) throw err;
        found = (await cw.findContacts(phones, identifier))[0] ?? (conv.phone ? (await cw.searchContacts(conv.phone.replace('+', '')))[0] : undefined);
        if (!found) throw err;
      }
    }
    const sourceId = found.sourceId ?? (await cw.contactInbox(found.id));
    await this.#links.set(inboxId, 'contact', conv.id, String(found.id), sourceId);
    return { id: found.id, sourceId };
  }

  async #content(m: MessageRow, meta: Record<string, unknown>, inboxId: string): Promise<string> {
    const platform = (await this.db.selectFrom('inboxes').select('platform').where('id', '=', inboxId).executeTakeFirst())?.platform ?? '';
    let text = WHATSAPP_FAMILY.has(platform) ? whatsAppToChatwoot(m.body) : m.body;
    const group = meta.group as { participant?: { externalId?: string; phone?: string; displayName?: string } | string } | undefined;
    if (group && m.sender_type === 'contact') {
      const p = typeof group.participant === 'object' ? group.participant : undefined;
      const who = [p?.phone ?? (typeof group.participant === 'string' ? group.participant : p?.externalId), p?.displayName].filter(Boolean).join(' - ');
      if (who) text = `**${who}:**\n${text}`;
    }
    const loc = meta.location as NeutralMessage['location'];
    if (m.type === 'location' && loc?.lat !== undefined && loc.lng !== undefined) {
      text = [loc.name, loc.address, `https://www.google.com/maps/search/?api=1&query=${loc.lat},${loc.lng}`].filter(Boolean).join('\n');
    }
    const media = meta.media as { download?: string; error?: string } | undefined;
    if (media?.download === 'failed') text = `${text}${text ? '\n' : ''}[the media could not be downloaded: ${media.error ?? 'unknown error'}]`;
    if (m.type === 'unsupported') text = '[a message of a kind Parley does not support]';
    if (m.edited_at !== null && text) text = `${text}\n_(edited)_`;
    return text;
  }

  /** The message's files; voice notes and other non-MP3 audio as MP3 (the original when transcoding fails). */
  async #attachments(orgId: string, messageId: string): Promise<CwAttachmentIn[]> {
    const files = (await this.files.attachmentsOf(orgId, [messageId])).get(messageId) ?? [];
    const out: CwAttachmentIn[] = [];
    for (const f of files) {
      const bytes = await this.files.bytesOf(orgId, f.id);
      if (!bytes) continue;
      if (f.content_type.startsWith('audio/') && f.content_type !== 'audio/mpeg') {
        try {
          const mp3 = await transcode(bytes, 'mp3', { timeoutMs: this.opts.timeoutMs, maxOutputBytes: this.opts.maxAudioBytes });
          out.push({ bytes: mp3, contentType: TARGET_CONTENT_TYPE.mp3, filename: `${f.filename.replace(/\.[^.]*$/, '') || 'voice'}.mp3` });
          continue;
        } catch (err) {
          this.log?.warn({ err, message_id: messageId, file_id: f.id, content_type: f.content_type }, 'voice note transcoding to MP3 failed; mirroring the original audio');
          this.#metric.inc({ direction: 'to_chatwoot', outcome: 'transcode_failed' });
        }
      }
      out.push({ bytes, contentType: f.content_type, filename: f.filename });
    }
    return out;
  }

  // --- changes to mirrored messages ---------------------------------------------------------------

  async #change(job: Extract<Job, { kind: 'change' }>, cw: ChatwootClient): Promise<DeliveryResult> {
    const inboxId = job.inbox_id;
    const m = await this.db.selectFrom('messages').select(['id', 'conversation_id']).where('id', '=', job.message_id).executeTakeFirst();
    const cwMessage = await this.#links.cwId(inboxId, 'message', job.message_id);
    const cwConversation = m ? await this.#links.cwId(inboxId, 'conversation', m.conversation_id) : null;
    if (!m || !cwMessage || !cwConversation) {
      // Statuses of messages never mirrored (or not yet) do not matter; the rest waits for the message.
      return job.change.kind === 'status' ? { ok: true } : { ok: false, error: 'the message is not in Chatwoot yet' };
    }
    const c = job.change;
    try {
      if (c.kind === 'delete') await cw.deleteMessage(Number(cwConversation), Number(cwMessage));
      else if (c.kind === 'status') {
        const status = c.status === 'played' ? 'read' : c.status;
        if (status !== 'sent' && status !== 'delivered' && status !== 'read' && status !== 'failed') return { ok: true };
        await cw.setMessageStatus(Number(cwConversation), Number(cwMessage), status, c.error ?? undefined);
      } else if (c.kind === 'edit' || (c.kind === 'reaction' && c.emoji)) {
        const content = c.kind === 'edit' ? `✏️ ${c.text}` : c.emoji!;
        await cw.createMessage(Number(cwConversation), { content, messageType: 'incoming', private: false, sourceId: `${OUR_SOURCE_PREFIX}${job.message_id}:${c.kind}:${isoNow(this.clock)}`, contentAttributes: { in_reply_to: Number(cwMessage) } });
      }
    } catch (err) {
      // Gone there already, or a Chatwoot without the status API (non-API inboxes, older versions).
      if (err instanceof ChatwootError && (err.status === 404 || (c.kind === 'status' && err.status === 422))) return { ok: true };
      throw err;
    }
    this.#metric.inc({ direction: 'to_chatwoot', outcome: `${c.kind}_mirrored` });
    return { ok: true };
  }
}
