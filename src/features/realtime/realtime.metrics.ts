import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Realtime metrics. `chat_websocket_connections` is seed 003's name. Labels stay bounded: the
 * rejection reason is one of a fixed few; nothing is labelled per conversation or user.
 */
export function createRealtimeMetrics(registry: Registry) {
  return {
    connections: new Gauge({ name: 'chat_websocket_connections', help: 'Open WebSocket connections on this node', registers: [registry] }),
    deliveries: new Counter({ name: 'chat_ws_deliveries_total', help: 'Frames queued to WebSocket clients', registers: [registry] }),
    slowClients: new Counter({ name: 'chat_ws_slow_clients_dropped_total', help: 'Connections cut off because the client did not read its backlog', registers: [registry] }),
    replays: new Counter({ name: 'chat_ws_resume_replays_total', help: 'Messages replayed from the database (resume and gap fill)', registers: [registry] }),
    resyncs: new Counter({ name: 'chat_ws_resync_required_total', help: 'Resumes refused because too much changed (client refetches)', registers: [registry] }),
    rejected: new Counter({ name: 'chat_ws_rejected_total', help: 'Connections refused at the handshake', labelNames: ['reason'] as const, registers: [registry] }),
  };
}
export type RealtimeMetrics = ReturnType<typeof createRealtimeMetrics>;
