import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** One registry per app instance (tests build several apps in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'chat_api_requests_total',
    help: 'HTTP API requests by method, route template and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'chat_api_request_duration_seconds',
    help: 'HTTP API request latency by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { registry, requests, duration };
}
export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Route label = the route template (bounded cardinality); requests that match no route are
 * counted under "unmatched". Each route gets its own onResponse hook, made when the route is
 * added, holding its labelled metric children: nothing is looked up or hashed per request
 * (reading `request.routeOptions` builds an object on every access, and prom-client hashes the
 * label set on every unlabelled call). Must be registered before the routes.
 */
export function registerRequestMetrics(app: FastifyInstance, m: Metrics): (req: FastifyRequest, reply: FastifyReply) => void {
  const hookFor = (method: string, route: string) => {
    const time = m.duration.labels({ method, route });
    const counts = new Map<number, { inc(): void }>();
    return (_req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      let count = counts.get(reply.statusCode);
      if (!count) counts.set(reply.statusCode, (count = m.requests.labels({ method, route, status: String(reply.statusCode) })));
      count.inc();
      time.observe(reply.elapsedTime / 1000);
      done();
    };
  };
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const hooks = methods.map((method) => hookFor(method, route.url));
    const own = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse];
    // One route entry may serve several methods; pick the hook of the request's method.
    const hook =
      hooks.length === 1
        ? hooks[0]!
        : (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => hooks[Math.max(0, methods.indexOf(req.method))]!(req, reply, done);
    route.onResponse = [...own, hook] as typeof route.onResponse;
  });
  // Requests that match no route: counted by the not-found handler once it has sent its 404.
  const unmatched = new Map<string, ReturnType<typeof hookFor>>();
  return (req: FastifyRequest, reply: FastifyReply) => {
    let hook = unmatched.get(req.method);
    if (!hook) unmatched.set(req.method, (hook = hookFor(req.method, 'unmatched')));
    hook(req, reply, () => undefined);
  };
}
