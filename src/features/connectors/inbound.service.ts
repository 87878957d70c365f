import type { Kysely, Selectable } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import { requireAccess, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { TurnGate } from '../../platform/turns.ts';
import { newId, newOrderedId } from '../../platform/ids.ts';
import type { TxRunner } from '../../storage/group-commit.ts';
import { PreparedInsert, PreparedQuery } from '../../storage/prepared.ts';
import type { DB, WebhookEventsTable } from '../../storage/schema.ts';
import type { ContactsService } from '../contacts/contacts.service.ts';
import type { InboxRow } from '../inboxes/inboxes.repo.ts';
import type { InboxesService } from '../inboxes/inboxes.service.ts';
import type { DeliveryResult } from '../integrations/dispatcher.ts';
import type { IntegrationEvents } from '../integrations/events.ts';
import { DuplicateDelivery, type MessagesService } from '../messages/messages.service.ts';
import type { SupportService } from '../support/support.service.ts';
import { ArrivalOrder, type Ordered } from './arrival-order.ts';
import { chatKey } from './chat-key.ts';
import { enqueueMediaFetch } from './media/media-jobs.ts';
import type { NeutralMessage, NeutralStatus } from './neutral.ts';
import { type Delivery, inboundConnector } from './registry.ts';

/** Every delivery looks its inbox up (prepared: see storage/prepared.ts). */
const INBOX_BY_ID = new PreparedQuery<[id: string], InboxRow>((db: Kysely<DB>, param) => db.selectFrom('inboxes').selectAll().where('id', '=', param(0)));

/** How long a delivery's inbox row is reused (see #inbox), and how many are kept. */
const INBOX_TTL_MS = 1000;
const INBOX_CACHE_MAX = 10_000;

/** The ack's insert (every delivery), several rows per statement when acks are batched. */
const INSERT_EVENTS = new PreparedInsert('webhook_events', ['id', 'org_id', 'inbox_id', 'platform', 'body', 'status', 'summary', 'error', 'received_at', 'processed_at', 'order_key']);

/** A delivery accepted, to be stored with its job. */
interface Accepted {
  id: string;
  orgId: string;
  inboxId: string;
  platform: string;
  body: string;
  receivedAt: string;
  orderKey: string;
}

/** The outbox target that processes stored deliveries. */
export const INBOUND_TARGET = 'inbound';

/**
 * The payload of an inbound job: a batch (the deliveries acknowledged together, each as
 * [id, inbox id, platform, chat]), or one delivery (a replay; jobs written before batches).
 */
export type BatchPayload = { deliveries: Array<[id: string, inboxId: string, platform: string, key: string]> };
export type SinglePayload = { webhook_event_id: string; inbox_id?: string; order_key?: string };

const RANK: Record<string, number> = { pending: 0, queued: 0, sent: 1, delivered: 2, read: 3, played: 4 };

/** The delivery statuses of sent messages that `status` moves on (read: sent and delivered). */
const sentRanksBelow = (status: string): string[] => Object.keys(RANK).filter((k) => k !== 'pending' && k !== 'queued' && (RANK[k] ?? 0) < (RANK[status] ?? 0));

/** The phone of a one-to-one WhatsApp chat id (`<digits>@s.whatsapp.net` or bare digits), else null. */
function phoneOfChat(chatId: string): string | null {
  const m = /^(\d{8,15})(@s\.whatsapp\.net)?$/.exec(chatId);
  return m ? `+${m[1]}` : null;
}

/** What each neutral kind is stored as: message type, body, metadata. */
function toStored(m: NeutralMessage): { type: string; body: string; metadata: Record<string, unknown> | null } {
  const extra = { platform_kind: m.kind, ...(m.forwarded ? { forwarded: true } : {}), ...(m.isGroup ? { group: { chat_id: m.chatId, participant: m.sender } } : {}) };
  switch (m.kind) {
    case 'text':
      return { type: 'text', body: m.text ?? '', metadata: m.forwarded || m.isGroup ? extra : null };
    case 'image':
    case 'sticker':
    case 'video':
    case 'audio':
    case 'voice':
    case 'document': {
      const type = m.kind === 'sticker' ? 'image' : m.kind === 'voice' ? 'audio' : m.kind === 'document' ? 'file' : m.kind;
      // The bytes are fetched later by the media fetcher; until then the platform's reference is kept.
      return { type, body: m.media?.caption ?? m.text ?? '', metadata: { ...extra, media: { ...m.media, download: 'pending' } } };
    }
    case 'location':
      return { type: 'location', body: m.location?.name ?? '', metadata: { ...extra, location: m.location } };
    case 'contacts':
      return { type: 'text', body: (m.contacts ?? []).map((c) => [c.name, ...c.phones.map((p) => p.number)].join(' ')).join('\n'), metadata: { ...extra, contacts: m.contacts } };
    case 'interactive_reply':
      return { type: 'text', body: m.text ?? m.interactive?.title ?? '', metadata: { ...extra, interactive: m.interactive } };
    case 'system':
      return { type: 'system', body: m.text ?? '', metadata: extra };
    default:
      return { type: 'unsupported', body: '', metadata: { ...extra, raw: m.raw } };
  }
}

// Run for every delivery processed: prepared (storage/prepared.ts).
const DELIVERY = new PreparedQuery<[id: string], Selectable<WebhookEventsTable>>((db: Kysely<DB>, param) => db.selectFrom('webhook_events').selectAll().where('id', '=', param(0)));
const MARK_PROCESSED = new PreparedQuery<[summary: string, at: string, id: string], never>((db: Kysely<DB>, param) =>
  db.updateTable('webhook_events').set({ status: 'processed', summary: param(0), error: null, processed_at: param(1) }).where('id', '=', param(2)),
);

/**
 * Platform webhooks in (CONNECTORS.md §0): a delivery is authenticated on its raw bytes, stored
 * as received (webhook_events) together with its processing job (the outbox, in the same
 * transaction), and acknowledged at once; the dispatcher then processes it — parse, dedupe on
 * (inbox, external id), contact, conversation, message, statuses — with retries. Nothing the
 * platform sends can make us answer 500: unknown shapes are stored as `unsupported`.
 */
export class InboundService {
  readonly #metrics: Counter<'platform' | 'outcome'>;
  readonly #counters = new Map<string, { inc(): void }>();
  readonly #order: ArrivalOrder;
  /**
   * Deliveries start at most 8 per event-loop turn (acks come first, see process()); their writes
   * share group commits. One per turn cost about a commit per delivery: 18.5 WAL pages and ~600 µs
   * of CPU per delivery (ack and processing), against 8.9 pages and ~300 µs with 8 (in-process,
   * 20,000 queued deliveries worked off; OUTBOX_CONCURRENCY 32). At most `maxProcessing` are
   * under way at once.
   */
  readonly #turns: TurnGate;
  readonly #inboxCache = new Map<string, { row: InboxRow; at: number }>();
  /** The deliveries waiting for the write that will store them (see #store). */
  #batch: { rows: Accepted[]; done: Promise<void> } | null = null;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly inboxes: InboxesService,
    private readonly contacts: ContactsService,
    private readonly support: SupportService,
    private readonly messages: MessagesService,
    private readonly integrations: IntegrationEvents,
    private readonly clock: Clock,
    registry: Registry,
    /** The ack's write (delivery + its job): group commit on SQLite, like sends. */
    private readonly writes: TxRunner | null = null,
    /** Database.statements: the processed / failed mark of a delivery. */
    private readonly statements: TxRunner | null = null,
    /**
     * Deliveries being processed at once, at most (the outbox's concurrency). A batch job starts all
     * its deliveries: unbounded, on PostgreSQL they queued hundreds of statements for the pool's
     * connections and the acks waited behind them (acks 295/s, p50 160 ms in the benchmark).
     */
    maxProcessing = 32,
  ) {
    this.#turns = new TurnGate(8, maxProcessing);
    this.#order = new ArrivalOrder(db);
    inboxes.onChange((id) => this.#inboxCache.delete(id));
    this.#metrics = new Counter({ name: 'chat_webhooks_in_total', help: 'Platform webhook deliveries by outcome', labelNames: ['platform', 'outcome'] as const, registers: [registry] });
  }

  #write<T>(work: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.statements ? this.statements.run(work) : work(this.db);
  }

  /** Meta's GET verification handshake: the challenge, or null (answered 403). */
  async challenge(platform: string, inboxId: string, query: Record<string, string | undefined>): Promise<string | null> {
    const inbox = await this.#inbox(platform, inboxId);
    const connector = inboundConnector(platform);
    return inbox && connector?.challenge ? connector.challenge(query, inbox) : null;
  }

  /** POST /webhooks/:platform/:inboxId: the answer to give the platform. */
  async receive(platform: string, inboxId: string, d: Delivery): Promise<{ status: number; body: Record<string, unknown> }> {
    const inbox = await this.#inbox(platform, inboxId);
    const connector = inboundConnector(platform);
    if (!inbox || !connector) return this.#answer(platform, 'unknown_inbox', 404, { error: { code: 'inbox.not_found', message: 'No such inbox' } });
    const check = connector.check(d, inbox, this.inboxes.credentials(inbox));
    if (check === 'missing') return this.#answer(platform, 'unsigned', 401, { error: { code: 'auth.required', message: 'Missing signature' } });
    if (check === 'invalid') return this.#answer(platform, 'bad_signature', 403, { error: { code: 'forbidden', message: 'Invalid signature' } });
    const text = d.raw.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.#answer(platform, 'invalid_json', 400, { error: { code: 'request.invalid_json', message: 'The body is not JSON' } });
    }
    // Time-ordered: deliveries of one chat are processed in arrival order (ArrivalOrder).
    const id = newOrderedId();
    const orderKey = chatKey(platform, json);
    await this.#store({ id, orgId: inbox.org_id, inboxId: inbox.id, platform, body: text, receivedAt: isoNow(this.clock), orderKey });
    return this.#answer(platform, 'accepted', 200, { received: true });
  }

  /**
   * Stores an accepted delivery and its job. The deliveries accepted in one event-loop turn share
   * one write (two multi-row INSERTs in one transaction, group-committed on SQLite) and one job per
   * organization (see #batchJobs): the first one opens the batch, the write takes whatever joined
   * by the time it runs. Resolves once committed.
   */
  #store(a: Accepted): Promise<void> {
    let batch = this.#batch;
    if (!batch) {
      const rows: Accepted[] = [];
      const write = async (trx: Kysely<DB>) => {
        if (this.#batch?.rows === rows) this.#batch = null; // sealed: later deliveries open the next batch
        await INSERT_EVENTS.execute(trx, rows.map((r) => [r.id, r.orgId, r.inboxId, r.platform, r.body, 'received', null, null, r.receivedAt, null, r.orderKey]));
        await this.integrations.enqueue(trx, this.#batchJobs(rows));
      };
      batch = { rows, done: this.writes ? this.writes.run(write) : this.db.transaction().execute(write) };
      this.#batch = batch;
    }
    batch.rows.push(a);
    return batch.done;
  }

  /** Admins: the deliveries of the organization's inboxes, newest first. */
  async list(p: Principal, inboxId?: string) {
    requireAccess(p, 'inboxes.manage');
    let q = this.db.selectFrom('webhook_events').select(['id', 'inbox_id', 'platform', 'status', 'summary', 'error', 'received_at', 'processed_at']).where('org_id', '=', p.orgId);
    if (inboxId) q = q.where('inbox_id', '=', inboxId);
    return q.orderBy('received_at', 'desc').limit(200).execute();
  }

  /** Admins: process a stored delivery again (dedupe keeps what was already stored). */
  async replay(p: Principal, id: string): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    const ev = await this.db.selectFrom('webhook_events').select(['id', 'org_id', 'inbox_id', 'order_key']).where('org_id', '=', p.orgId).where('id', '=', id).executeTakeFirst();
    if (!ev) throw new AppError('not_found', 'Webhook event not found');
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('webhook_events').set({ status: 'received', error: null }).where('id', '=', id).execute();
      await this.integrations.enqueue(trx, [this.#job(ev.org_id, { inboxId: ev.inbox_id, key: ev.order_key }, id, `inbound:${id}:replay:${newId()}`)]);
    });
  }

  /**
   * The outbox handler of a batch job (#batchJobs): its deliveries, each after its chat's earlier
   * ones (ArrivalOrder.runAll). A delivery that fails is marked failed and the job is retried:
   * the retry skips the deliveries processed meanwhile.
   */
  async processBatch(items: readonly Ordered[]): Promise<DeliveryResult> {
    const settled = await this.#order.runAll(items, this.#gated);
    const failed = settled.filter((r) => r.status === 'rejected');
    if (failed.length === 0) return { ok: true };
    const first = failed[0]!.reason;
    return { ok: false, error: `${failed.length} of ${items.length} deliveries failed; the first: ${first instanceof Error ? first.message : String(first)}` };
  }

  /** The outbox handler: one stored delivery (after the inbox's earlier ones, see ArrivalOrder). */
  async process(webhookEventId: string, order?: { inboxId: string; key: string }): Promise<DeliveryResult> {
    // A few deliveries per event-loop turn (#turns): acks (the requests platforms time out on) come first.
    return (await this.#order.run(webhookEventId, order, this.#gated)) ?? { ok: true };
  }

  /** One delivery, in its turn and slot (#turns). */
  readonly #gated = (id: string): Promise<DeliveryResult> => this.#turns.run(() => this.#processOne(id));

  async #processOne(webhookEventId: string): Promise<DeliveryResult> {
    const [ev] = await DELIVERY.execute(this.db, [webhookEventId]);
    if (!ev) return { ok: false, permanent: true, error: 'webhook event gone' };
    const inbox = await this.inboxes.getRow(ev.org_id, ev.inbox_id);
    const connector = inboundConnector(ev.platform);
    if (!inbox || !connector) return { ok: false, permanent: true, error: 'inbox gone' };
    const counts = { messages: 0, duplicates: 0, echoes: 0, statuses: 0, changes: 0, orphans: 0 };
    try {
      const parsed = connector.parse(JSON.parse(ev.body));
      for (const m of parsed.messages) counts[await this.#message(inbox, m)] += 1;
      for (const s of parsed.statuses) counts[await this.#status(inbox, s)] += 1;
      const summary = JSON.stringify(counts);
      await this.#write((db) => MARK_PROCESSED.execute(db, [summary, isoNow(this.clock), ev.id]));
      return { ok: true };
    } catch (err) {
      const failed = { status: 'failed', error: err instanceof Error ? err.message : String(err) };
      await this.#write((db) => db.updateTable('webhook_events').set(failed).where('id', '=', ev.id).execute());
      throw err;
    }
  }

  async #message(inbox: InboxRow, m: NeutralMessage): Promise<'messages' | 'duplicates' | 'echoes' | 'changes' | 'orphans'> {
    if (m.kind === 'reaction' || m.kind === 'edit' || m.kind === 'delete') {
      const targetId = m.kind === 'reaction' ? m.reaction?.targetExternalId : m.targetExternalId;
      const target = targetId ? await this.messages.findInInbox(inbox.org_id, inbox.id, targetId) : undefined;
      if (!target) return 'orphans';
      if (m.kind === 'edit') await this.messages.applyPlatformChange(target, { edit: m.text ?? '' });
      else if (m.kind === 'delete') await this.messages.applyPlatformChange(target, { delete: true });
      else await this.messages.applyPlatformChange(target, { contactReaction: m.reaction!.emoji });
      return 'changes';
    }
    // An echo of a message Parley itself sent is already stored (with its external id).
    if (m.isEcho && (await this.messages.findInInbox(inbox.org_id, inbox.id, m.externalId))) return 'echoes';
    // The chat of an echo is the customer's (its sender is the business). A gateway can deliver
    // the echo of our send before answering the send: while one of ours is still pending in that
    // chat, wait (retried) rather than store our own message a second time.
    const who = m.isGroup || m.isEcho ? m.chatId : m.sender.externalId;
    if (m.isEcho && (await this.#sendPending(inbox.id, who))) throw new Error('an echo arrived while a send to this chat is pending; retrying once it settled');
    const profile = m.isGroup ? { name: m.chatId } : m.isEcho ? { name: null, phone: phoneOfChat(m.chatId) } : { name: m.sender.displayName ?? null, phone: m.sender.phone ?? null };
    const { contact } = await this.contacts.resolve(inbox.org_id, inbox.id, who, profile);
    const conversationId = await this.support.openForContact(inbox.org_id, inbox.id, contact.id);
    const stored = toStored(m);
    // Codechat v1 quotes and deletes by its own row id: kept with the message.
    if (m.platformRef) stored.metadata = { ...stored.metadata, platform_ref: m.platformRef };
    const replyTo = m.replyToExternalId ? await this.messages.findByExternalId(inbox.org_id, [conversationId], m.replyToExternalId) : undefined;
    try {
      await this.messages.storeInbound(inbox.org_id, conversationId, {
        senderType: m.isEcho ? 'business' : 'contact',
        senderId: m.isEcho ? null : contact.id,
        ...stored,
        externalId: m.externalId,
        createdAt: m.sentAt,
        replyToId: replyTo?.id ?? null,
        dedupe: { inboxId: inbox.id, externalId: m.externalId },
        // Its media is downloaded later (media_fetch job, queued atomically with the message).
        inTransaction: stored.metadata?.media ? (trx, row) => enqueueMediaFetch(this.integrations, trx, inbox.org_id, row.id) : undefined,
      });
    } catch (err) {
      if (err instanceof DuplicateDelivery) return 'duplicates';
      throw err;
    }
    if (!m.isEcho) await this.support.onCustomerMessage(inbox.org_id, conversationId);
    return 'messages';
  }

  /** A delivery status of one of our messages: the highest rank wins; failed only before success. */
  async #status(inbox: InboxRow, s: NeutralStatus): Promise<'statuses' | 'orphans'> {
    if (s.externalId === '*') return this.#watermark(inbox, s);
    const m = await this.messages.findInInbox(inbox.org_id, inbox.id, s.externalId);
    if (!m) return 'orphans';
    if (s.andEarlier) await this.#earlier(inbox, m, s);
    const current = m.delivery_status;
    const better = s.status === 'failed' ? current === null || (RANK[current] ?? 0) <= 1 : (RANK[s.status] ?? 0) > (current === null || current === 'failed' ? -1 : (RANK[current] ?? 0));
    if (!better) return 'statuses';
    await this.messages.applyPlatformChange(m, { deliveryStatus: s.status, deliveryError: s.error ? `${s.error.code ?? ''} ${s.error.message ?? ''}`.trim() : null });
    await this.db.transaction().execute((trx) => this.integrations.record(trx, inbox.org_id, 'chat.message.status', { conversation_id: m.conversation_id, message_id: m.id, status: s.status, at: s.at }));
    return 'statuses';
  }

  /**
   * Messenger's `delivery` / `read` watermark (the Meta parser's status with externalId '*'): every
   * message of ours to that person sent at or before `at` that the status moves on (the most
   * recent 100), each as its own status. 'orphans' when it moved none.
   */
  async #watermark(inbox: InboxRow, s: NeutralStatus): Promise<'statuses' | 'orphans'> {
    const below = sentRanksBelow(s.status);
    if (!s.recipientId || below.length === 0) return 'orphans';
    const ours = await this.db
      .selectFrom('contact_identities as ci')
      .innerJoin('conversations as c', (j) => j.onRef('c.contact_id', '=', 'ci.contact_id').on('c.inbox_id', '=', inbox.id))
      .innerJoin('messages as m', 'm.conversation_id', 'c.id')
      .select('m.external_id')
      .where('ci.inbox_id', '=', inbox.id)
      .where('ci.external_id', '=', s.recipientId)
      .where('m.delivery_status', 'in', below)
      .where('m.external_id', 'is not', null)
      .where('m.created_at', '<=', s.at)
      .orderBy('m.seq', 'desc')
      .limit(100)
      .execute();
    for (const m of ours) await this.#status(inbox, { ...s, externalId: m.external_id! });
    return ours.length > 0 ? 'statuses' : 'orphans';
  }

  /**
   * Instagram's `read.mid`: the messages of ours before `m` in its conversation that the status
   * moves on (the most recent 100), each as its own status (events included).
   */
  async #earlier(inbox: InboxRow, m: { conversation_id: string; seq: number }, s: NeutralStatus): Promise<void> {
    const below = sentRanksBelow(s.status);
    if (below.length === 0) return;
    const earlier = await this.db
      .selectFrom('messages')
      .select('external_id')
      .where('conversation_id', '=', m.conversation_id)
      .where('seq', '<', m.seq)
      .where('delivery_status', 'in', below)
      .where('external_id', 'is not', null)
      .orderBy('seq', 'desc')
      .limit(100)
      .execute();
    for (const e of earlier) await this.#status(inbox, { ...s, externalId: e.external_id!, andEarlier: false });
  }

  /** Is one of our messages to this chat still waiting to be sent (its external id unknown)? */
  async #sendPending(inboxId: string, externalId: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('contact_identities as ci')
      .innerJoin('conversations as c', (j) => j.onRef('c.contact_id', '=', 'ci.contact_id').on('c.inbox_id', '=', inboxId))
      .innerJoin('messages as m', 'm.conversation_id', 'c.id')
      .select('m.id')
      .where('ci.inbox_id', '=', inboxId)
      .where('ci.external_id', '=', externalId)
      .where('m.delivery_status', '=', 'pending')
      .limit(1)
      .executeTakeFirst();
    return r !== undefined;
  }

  /**
   * The jobs of deliveries acknowledged together: one per organization (the outbox row belongs to
   * one), listing its deliveries in arrival order. A job per delivery was a third of the ack's
   * SQLite time (an outbox row and its four index entries), and each cost a claim and a completion.
   */
  #batchJobs(rows: readonly Accepted[]) {
    const byOrg = new Map<string, Accepted[]>();
    for (const r of rows) {
      const list = byOrg.get(r.orgId);
      if (list) list.push(r);
      else byOrg.set(r.orgId, [r]);
    }
    return [...byOrg].map(([orgId, list]) => {
      const payload: BatchPayload = { deliveries: list.map((r) => [r.id, r.inboxId, r.platform, r.orderKey]) };
      return { orgId, target: INBOUND_TARGET, eventName: 'webhook.inbound', eventId: list[0]!.id, payload: JSON.stringify(payload), idempotencyKey: `inbound:${list[0]!.id}` };
    });
  }

  #job(orgId: string, order: { inboxId: string; key: string }, id: string, key: string) {
    return { orgId, target: INBOUND_TARGET, eventName: 'webhook.inbound', eventId: id, payload: JSON.stringify({ webhook_event_id: id, inbox_id: order.inboxId, order_key: order.key }), idempotencyKey: key };
  }

  /**
   * The inbox of a delivery. Kept INBOX_TTL_MS (a busy inbox is read once per second, not per
   * delivery; this process's own changes drop the entry at once, another node's apply within the
   * TTL). An unknown id is not kept: a flood of made-up ids cannot grow the map.
   */
  async #inbox(platform: string, inboxId: string): Promise<InboxRow | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(inboxId)) return undefined;
    const now = performance.now();
    const hit = this.#inboxCache.get(inboxId);
    let row = hit && now - hit.at < INBOX_TTL_MS ? hit.row : undefined;
    if (!row) {
      [row] = await INBOX_BY_ID.execute(this.db, [inboxId]);
      if (row) {
        if (this.#inboxCache.size >= INBOX_CACHE_MAX) this.#inboxCache.delete(this.#inboxCache.keys().next().value!);
        this.#inboxCache.set(inboxId, { row, at: now });
      } else this.#inboxCache.delete(inboxId);
    }
    return row && row.platform === platform ? row : undefined;
  }

  #answer(platform: string, outcome: string, status: number, body: Record<string, unknown>) {
    // The labelled child, once per (platform, outcome): a labels object hashed per delivery cost more.
    const key = `${platform}\u0000${outcome}`;
    let counter = this.#counters.get(key);
    if (!counter) this.#counters.set(key, (counter = this.#metrics.labels({ platform, outcome })));
    counter.inc();
    return { status, body };
  }
}
