import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { RealtimeConfig } from '../../config/config.ts';
import type { Services } from '../../services.ts';
import { Gateway } from './gateway.ts';
import { createRealtimeMetrics } from './realtime.metrics.ts';

/**
 * `GET /ws`: the realtime gateway (README, "Realtime"). The socket authenticates itself at the
 * handshake (`?token=` or `Authorization`), so the route sits outside the authenticated context;
 * failures are answered with close codes, which browsers can read (an HTTP error on the upgrade
 * they cannot).
 */
export async function registerRealtime(app: FastifyInstance, services: Services, config: RealtimeConfig, registry: Registry): Promise<Gateway> {
  await app.register(websocket, { options: { maxPayload: config.maxFrameBytes, perMessageDeflate: false, clientTracking: false } });
  const gateway = new Gateway({
    bus: services.bus,
    authenticator: services.authenticator,
    conversations: services.conversations,
    messages: services.messages,
    readState: services.readState,
    presence: services.presence,
    publisher: services.realtime,
    limiter: services.limiter,
    clock: services.clock,
    metrics: createRealtimeMetrics(registry),
    log: app.log,
    config,
  });
  await gateway.start();
  app.addHook('preClose', () => gateway.stop());
  app.get('/ws', { websocket: true, schema: { hide: true } }, (socket, req) => {
    void gateway.accept(socket, req.raw, req.ip).catch((err: unknown) => {
      app.log.warn({ err: String(err) }, 'realtime: connection setup failed');
      socket.terminate();
    });
  });
  return gateway;
}
