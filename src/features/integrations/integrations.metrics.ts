import { Counter, Gauge, type Registry } from 'prom-client';

export type DeliveryOutcome = 'delivered' | 'retry' | 'failed';

/**
 * Outbox metrics. The depth and the age of the oldest pending row are read from the database when
 * scraped (one query per scrape, shared by both gauges), so every node reports the whole outbox:
 * alert on the maximum, not the sum. Delivery counts are per process, labelled by target (redis,
 * webhook, later one per platform: bounded) and outcome (delivered, retry, failed).
 */
export function createOutboxMetrics(registry: Registry, stats: () => Promise<{ count: number; oldest: string | null }>, now: () => number) {
  let last: { at: number; value: Promise<{ count: number; oldest: string | null } | null> } | null = null;
  const read = () => {
    const t = now();
    if (!last || t - last.at > 500) last = { at: t, value: stats().catch(() => null) };
    return last.value;
  };
  new Gauge({
    name: 'chat_outbox_depth',
    help: 'Outbox rows waiting for delivery (pending), across the database',
    registers: [registry],
    async collect() {
      const s = await read();
      if (s) this.set(s.count);
    },
  });
  new Gauge({
    name: 'chat_outbox_oldest_age_seconds',
    help: 'Age of the oldest pending outbox row, in seconds (0 when none is pending)',
    registers: [registry],
    async collect() {
      const s = await read();
      if (s) this.set(s.oldest ? Math.max(0, (now() - Date.parse(s.oldest)) / 1000) : 0);
    },
  });
  const deliveries = new Counter({
    name: 'chat_outbox_deliveries_total',
    help: 'Outbox delivery attempts by target and outcome (delivered, retry: failed and rescheduled, failed: gave up)',
    labelNames: ['target', 'outcome'] as const,
    registers: [registry],
  });
  return {
    delivery(target: string, outcome: DeliveryOutcome): void {
      deliveries.inc({ target, outcome });
    },
  };
}
export type OutboxMetrics = ReturnType<typeof createOutboxMetrics>;
