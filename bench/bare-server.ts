/**
 * The baseline of the users-me and send benchmarks: a plain Fastify 5 server (logger off, no plugins, no
 * hooks, no schema) with one GET route returning a fixed JSON object, the way a bare Fastify route
 * would (`return obj`, serialized by Fastify's default JSON.stringify path on every request).
 * Started by bench/run.ts as its own process:
 *
 *   BENCH_BARE_PORT=<port> BENCH_BARE_HOST=127.0.0.1 BENCH_BARE_PATH=/api/v1/users/me \
 *   BENCH_BARE_BODY_FILE=<file with the JSON body> node --import tsx bench/bare-server.ts
 *
 * BENCH_BARE_METHOD=POST BENCH_BARE_STATUS=201 makes the route a POST answering that status (the send
 * benchmark); Fastify's built-in JSON body parser then reads each request's body, as on any bare POST.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`bare-server: ${name} is required\n`);
    process.exit(2);
  }
  return v;
};

const port = Number(need('BENCH_BARE_PORT'));
const host = process.env.BENCH_BARE_HOST ?? '127.0.0.1';
const path = process.env.BENCH_BARE_PATH ?? '/';
const body: unknown = JSON.parse(readFileSync(need('BENCH_BARE_BODY_FILE'), 'utf8'));

const method = process.env.BENCH_BARE_METHOD ?? 'GET';
const status = Number(process.env.BENCH_BARE_STATUS ?? 200);

const app = Fastify({ logger: false });
if (method === 'POST') app.post(path, async (_req, reply) => reply.code(status).send(body));
else app.get(path, async () => body);

const stop = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

await app.listen({ port, host });
process.stdout.write(`bare-server listening on http://${host}:${port}${path}\n`);
