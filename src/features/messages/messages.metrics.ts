import { Counter, type Registry } from 'prom-client';

/**
 * Message metrics (seed 003's names). Labels are the conversation kind and the message type, not
 * the conversation id: one time series per channel would grow without bound with the number of
 * channels (Prometheus' own guidance on label cardinality), so per-channel volumes are a query on
 * the database, not a metric.
 */
export function createMessageMetrics(registry: Registry) {
  const sent = new Counter({ name: 'chat_messages_sent_total', help: 'Messages sent, by message type', labelNames: ['type'] as const, registers: [registry] });
  const byChannel = new Counter({
    name: 'chat_messages_by_channel',
    help: 'Messages sent, by conversation kind (public, private, direct, group, support); not by id, to keep cardinality bounded',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  // Labelled children kept per value: prom-client hashes the label object on every labelled inc.
  const byType = new Map<string, { inc(): void }>();
  const byKind = new Map<string, { inc(): void }>();
  const child = (cache: Map<string, { inc(): void }>, make: () => { inc(): void }, value: string) => {
    let c = cache.get(value);
    if (!c) cache.set(value, (c = make()));
    return c;
  };
  return {
    sent(kind: string, type: string): void {
      child(byType, () => sent.labels({ type }), type).inc();
      child(byKind, () => byChannel.labels({ kind }), kind).inc();
    },
  };
}
export type MessageMetrics = ReturnType<typeof createMessageMetrics>;
