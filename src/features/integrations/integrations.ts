import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { TxRunner } from '../../storage/group-commit.ts';
import { Registry } from 'prom-client';
import type { IntegrationsConfig } from '../../config/config.ts';
import type { Clock } from '../../platform/clock.ts';
import type { SecretBox } from '../../platform/secret-box.ts';
import type { DB } from '../../storage/schema.ts';
import { OutboxDispatcher } from './dispatcher.ts';
import { IntegrationEvents } from './events.ts';
import { createOutboxMetrics } from './integrations.metrics.ts';
import { OutboxRepo } from './outbox.repo.ts';
import { RedisTarget } from './redis-target.ts';
import { WebhookTarget } from './webhook-target.ts';
import { WebhooksRepo } from './webhooks.repo.ts';
import { WebhooksService } from './webhooks.service.ts';

export interface IntegrationsDeps {
  db: Kysely<DB>;
  /** The app's Redis connection (integration events are published on it). */
  redis: Redis | null;
  config: IntegrationsConfig;
  clock: Clock;
  secrets: SecretBox;
  registry?: Registry | undefined;
  onError?: ((err: unknown) => void) | undefined;
  /** Database.statements: the outbox's own writes (claims, completions). */
  statements?: TxRunner | undefined;
}

/**
 * The outbox and what leaves through it, wired once (called by the composition root):
 * `integrations` (producers record events in their transaction), `dispatcher` (delivers; started
 * and stopped with the app; further targets register a handler on it) and `webhooks` (the API).
 */
export function createIntegrations(deps: IntegrationsDeps) {
  const { config, clock } = deps;
  const outbox = new OutboxRepo(deps.db, deps.statements ?? null);
  const endpoints = new WebhooksRepo(deps.db);
  const metrics = createOutboxMetrics(deps.registry ?? new Registry(), () => outbox.pendingStats(), () => clock.now());
  const dispatcher = new OutboxDispatcher(outbox, config.outbox, clock, metrics, deps.onError);
  const redis = config.redisEvents ? deps.redis : null;
  if (redis) dispatcher.register('redis', new RedisTarget(redis, config.redisMinSubscribers, () => void dispatcher.expedite('redis')));
  dispatcher.register('webhook', new WebhookTarget(endpoints, deps.secrets, config.webhooks, clock));
  const kick = () => dispatcher.kick();
  const integrations = new IntegrationEvents(outbox, endpoints, clock, { redis: redis !== null }, { kick, soon: () => dispatcher.soon() });
  const webhooks = new WebhooksService(endpoints, outbox, deps.secrets, clock, config.webhooks, kick);
  return { integrations, dispatcher, webhooks };
}
