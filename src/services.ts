import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import type { Config } from './config/config.ts';
import { ApiKeysRepo } from './features/api-keys/api-keys.repo.ts';
import { ApiKeysService } from './features/api-keys/api-keys.service.ts';
import { AuthRepo } from './features/auth/auth.repo.ts';
import { AuthService } from './features/auth/auth.service.ts';
import { Authenticator } from './features/auth/authenticator.ts';
import { HostJwtVerifier } from './features/auth/host-jwt.ts';
import { AccessTokens } from './features/auth/tokens.ts';
import { ConversationsRepo } from './features/conversations/conversations.repo.ts';
import { ConversationsService } from './features/conversations/conversations.service.ts';
import { FilesRepo } from './features/files/files.repo.ts';
import { FilesService } from './features/files/files.service.ts';
import { createFileStorage } from './files/create-file-storage.ts';
import { HistoryPageCache } from './features/messages/page-cache.ts';
import { createIntegrations } from './features/integrations/integrations.ts';
import { SecretBox } from './platform/secret-box.ts';
import { ContactsRepo } from './features/contacts/contacts.repo.ts';
import { ContactsService } from './features/contacts/contacts.service.ts';
import { InboxesRepo } from './features/inboxes/inboxes.repo.ts';
import { InboxesService } from './features/inboxes/inboxes.service.ts';
import { SupportRepo } from './features/support/support.repo.ts';
import { TeamsService } from './features/teams/teams.ts';
import { type BatchPayload, INBOUND_TARGET, InboundService, type SinglePayload } from './features/connectors/inbound.service.ts';
import { MEDIA_FETCH_TARGET, MediaFetchJobs } from './features/connectors/media/media-jobs.ts';
import { CHATWOOT_IN_TARGET, ChatwootInbound } from './features/relay/chatwoot-in.ts';
import { safeRequester } from './features/relay/chatwoot-client.ts';
import { CHATWOOT_MIRROR_TARGET, ChatwootMirror, messageFromChatwoot } from './features/relay/mirror-out.ts';
import { MirrorsService } from './features/relay/mirrors.service.ts';
import { OutboundService, PLATFORM_SEND_TARGET, PLATFORM_SIGNAL_TARGET, type OutboundLog } from './features/connectors/outbound/outbound.service.ts';
import { SupportService } from './features/support/support.service.ts';
import { PresenceService } from './features/realtime/presence.ts';
import { MemoryPresenceStore, RedisPresenceStore } from './features/realtime/presence-store.ts';
import { RealtimePublisher } from './features/realtime/publisher.ts';
import { MessagesRepo } from './features/messages/messages.repo.ts';
import { createMessageMetrics } from './features/messages/messages.metrics.ts';
import { MessagesService } from './features/messages/messages.service.ts';
import { ReadStateRepo } from './features/read-state/read-state.repo.ts';
import { ReadStateService } from './features/read-state/read-state.service.ts';
import { OrganizationsRepo } from './features/organizations/organizations.repo.ts';
import { OrganizationsService } from './features/organizations/organizations.service.ts';
import { SearchRepo } from './features/search/search.repo.ts';
import { SearchService } from './features/search/search.service.ts';
import { FtsIndexer } from './features/search/fts-indexer.ts';
import { UsersRepo } from './features/users/users.repo.ts';
import { UsersService } from './features/users/users.service.ts';
import { PrincipalCache } from './access/principal-cache.ts';
import type { EventBus } from './bus/event-bus.ts';
import { MemoryEventBus } from './bus/memory-event-bus.ts';
import { RedisEventBus } from './bus/redis-event-bus.ts';
import { MemoryRateLimiter } from './limits/memory-rate-limiter.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import { RedisRateLimiterWithFallback } from './limits/redis-rate-limiter.ts';
import { systemClock, type Clock } from './platform/clock.ts';
import type { Database } from './storage/db.ts';

export interface ServiceDeps {
  config: Readonly<Config>;
  database: Database;
  /** Set when REDIS_URL is configured: shared rate limits (and, later, the bus and presence). */
  redis: Redis | null;
  /** The resolved access-token secret (config, or the one kept in the data folder). */
  jwtSecret: string;
  clock?: Clock;
  /** Key prefix in Redis (tests use a random one). */
  redisPrefix?: string;
  /** Where domain metrics are registered (the app's registry; a private one when absent). */
  registry?: Registry;
  /** Errors of background work (bus delivery) that have no request to answer. */
  onBackgroundError?: (err: unknown) => void;
  /** Warnings of background work that still succeeded (e.g. a voice note sent untranscoded). */
  log?: OutboundLog;
}

/** The composition root: every service, wired once. Backends are chosen here from config alone. */
export function createServices(deps: ServiceDeps) {
  const clock = deps.clock ?? systemClock;
  const { db } = deps.database;
  const prefix = deps.redisPrefix ?? 'parley:';
  const limiter: RateLimiter = deps.redis ? new RedisRateLimiterWithFallback(deps.redis, prefix, () => clock.now(), deps.onBackgroundError) : new MemoryRateLimiter(() => clock.now());
  const bus: EventBus = deps.redis ? new RedisEventBus(deps.redis, prefix, deps.onBackgroundError) : new MemoryEventBus(deps.onBackgroundError);
  const principals = new PrincipalCache(bus, deps.config.authCacheTtlMs, () => clock.now());

  const users = new UsersService(new UsersRepo(db), principals, clock);
  const orgs = new OrganizationsService(new OrganizationsRepo(db), users, principals, clock);
  const apiKeys = new ApiKeysService(new ApiKeysRepo(db), principals, clock);
  const tokens = new AccessTokens(deps.jwtSecret, deps.config.accessTokenTtlSeconds, () => clock.now());
  const auth = new AuthService(new AuthRepo(db), users, orgs, tokens, limiter, principals, deps.config, clock);
  users.setSessionRevoker(auth);
  const host = new HostJwtVerifier(deps.config.hostJwt);
  const authenticator = new Authenticator(tokens, auth, apiKeys, users, orgs, host, principals, deps.config.hostJwt);

  const secrets = SecretBox.fromConfig(deps.config.encryptionKeys, deps.jwtSecret);
  // The outbox: producers call integrations.record(trx, ...) in their transaction; the dispatcher
  // delivers (Redis Pub/Sub, webhooks; more targets register handlers on it).
  const { integrations, dispatcher, webhooks } = createIntegrations({
    db,
    redis: deps.redis,
    config: deps.config.integrations,
    clock,
    secrets,
    registry: deps.registry,
    onError: deps.onBackgroundError,
    statements: deps.database.statements,
  });
  const realtime = new RealtimePublisher(bus, clock, deps.onBackgroundError);
  const presenceStore = deps.redis ? new RedisPresenceStore(deps.redis, deps.config.realtime.presenceTtlMs, prefix) : new MemoryPresenceStore(deps.config.realtime.presenceTtlMs, () => clock.now());
  const presence = new PresenceService(presenceStore, realtime);
  const conversations = new ConversationsService(new ConversationsRepo(db), users, clock, realtime);
  const files = new FilesService(new FilesRepo(db), createFileStorage(deps.config), conversations, clock, deps.config.files.uploadMaxBytes);
  const sendLimit = { limiter, ...deps.config.sendLimit };
  const messages = new MessagesService(
    new MessagesRepo(db, deps.database.writes),
    conversations,
    clock,
    files,
    sendLimit,
    createMessageMetrics(deps.registry ?? new Registry()),
    new HistoryPageCache(deps.config.historyCachePages),
    realtime,
  );
  const inboxes = new InboxesService(new InboxesRepo(db), users, secrets, clock, deps.config.publicUrl);
  // chat.contact.new: written right after the contact (its own transaction; a contact is one insert).
  const contacts = new ContactsService(new ContactsRepo(db), users, clock, (contact, orgId) => {
    db.transaction()
      .execute((trx) => integrations.record(trx, orgId, 'chat.contact.new', { contact }))
      .catch((err: unknown) => deps.onBackgroundError?.(err));
  });
  const teams = new TeamsService(db, clock);
  const support = new SupportService(new SupportRepo(db), conversations, messages, inboxes, contacts, users, presence, clock, realtime, teams);
  support.setEventRecorder(integrations);
  conversations.setEventRecorder(integrations);
  messages.setSupportHooks(integrations, (orgId, id) => support.onCustomerMessage(orgId, id));
  presence.onOffline((orgId, userId) => void support.reassignFrom(orgId, userId).catch((err: unknown) => deps.onBackgroundError?.(err)));
  const outbound = new OutboundService(db, inboxes, messages, integrations, deps.config.platformApis, clock, deps.registry ?? new Registry(), files, deps.log);
  messages.setOutbound((trx, orgId, conversationId, messageId) => outbound.enqueue(trx, orgId, conversationId, messageId));
  messages.setSignals((orgId, messageId, signal) => outbound.enqueueSignal(orgId, messageId, signal));
  dispatcher.register(PLATFORM_SIGNAL_TARGET, { deliver: (row, signal) => outbound.deliverSignal(JSON.parse(row.payload) as Parameters<OutboundService['deliverSignal']>[0], signal) });
  dispatcher.register(PLATFORM_SEND_TARGET, {
    deliver: (row, signal) => {
      const p = JSON.parse(row.payload) as { message_id: string; conversation_id?: string };
      return outbound.deliver(p.message_id, p.conversation_id, signal, row.attempts >= deps.config.integrations.outbox.maxAttempts);
    },
  });
  const inbound = new InboundService(db, inboxes, contacts, support, messages, integrations, clock, deps.registry ?? new Registry(), deps.database.writes, deps.database.statements, deps.config.integrations.outbox.concurrency);
  dispatcher.register(INBOUND_TARGET, {
    deliver: (row) => {
      const p = JSON.parse(row.payload) as BatchPayload | SinglePayload;
      if ('deliveries' in p) return inbound.processBatch(p.deliveries.map(([id, inboxId, platform, key]) => ({ id, inboxId, platform, key })));
      return inbound.process(p.webhook_event_id, p.inbox_id !== undefined && p.order_key !== undefined ? { inboxId: p.inbox_id, key: p.order_key } : undefined);
    },
  });
  const mediaJobs = new MediaFetchJobs(db, inboxes, files, messages, { apis: deps.config.platformApis, ...deps.config.media }, deps.config.integrations.outbox.maxAttempts);
  dispatcher.register(MEDIA_FETCH_TARGET, { deliver: (row, signal) => mediaJobs.deliver(row, signal) });
  // The Chatwoot mirror / relay (issue 7): mirrors on inboxes, relay sessions, both directions.
  const mirrors = new MirrorsService(db, inboxes, secrets, clock, deps.config.publicUrl);
  const relayHttp = safeRequester(deps.config.relay.allowPrivate);
  const registry = deps.registry ?? new Registry();
  const mirror = new ChatwootMirror(db, mirrors, files, integrations, relayHttp, { timeoutMs: deps.config.relay.timeoutMs, lockMs: deps.config.integrations.outbox.lockMs, maxAudioBytes: deps.config.media.maxBytes }, clock, registry, deps.log);
  messages.setMirror({ message: (trx, orgId, conversationId, m) => (messageFromChatwoot(m) ? Promise.resolve() : mirror.enqueueMessage(trx, orgId, conversationId, m)), change: (m, change, key) => mirror.enqueueChange(m, change, key) });
  mediaJobs.onSettled = (orgId, messageId) => mirror.enqueueAfterMedia(orgId, messageId);
  dispatcher.register(CHATWOOT_MIRROR_TARGET, { deliver: (row, signal) => mirror.deliver(row, signal) });
  const chatwoot = new ChatwootInbound(db, mirrors, inboxes, contacts, support, messages, files, integrations, relayHttp, { allowPrivate: deps.config.relay.allowPrivate, timeoutMs: deps.config.relay.timeoutMs, maxBytes: deps.config.media.maxBytes }, clock, registry);
  dispatcher.register(CHATWOOT_IN_TARGET, {
    deliver: (row, signal) => {
      const p = JSON.parse(row.payload) as { webhook_event_id: string; inbox_id?: string; order_key?: string };
      return chatwoot.process(p.webhook_event_id, p.inbox_id !== undefined && p.order_key !== undefined ? { inboxId: p.inbox_id, key: p.order_key } : undefined, signal);
    },
  });
  const readState = new ReadStateService(new ReadStateRepo(db), conversations, messages, clock, realtime);
  // SQLite: new messages reach the search index in batches (FtsIndexer); PostgreSQL indexes in the row.
  const ftsIndexer = deps.database.dialect === 'sqlite' ? new FtsIndexer(db, deps.database.writes, { intervalMs: deps.config.searchIndexIntervalMs, onError: deps.onBackgroundError }) : null;
  const search = new SearchService(new SearchRepo(db), messages, ftsIndexer);

  return { clock, bus, limiter, principals, users, orgs, apiKeys, tokens, auth, authenticator, conversations, messages, readState, search, ftsIndexer, files, realtime, presence, secrets, integrations, dispatcher, webhooks, inboxes, contacts, support, inbound, teams, outbound, mirrors, chatwoot };
}

export type Services = ReturnType<typeof createServices>;
