import 'dotenv/config';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ensurePlatformAdmin, resolveJwtSecret, runMigrations } from './bootstrap.ts';
import { ConfigError, loadConfig } from './config/config.ts';
import { seedDemo } from './demo/demo-seed.ts';
import { loggerOptions } from './platform/logger.ts';
import { createServices } from './services.ts';
import { createDb } from './storage/db.ts';
import { resealSecrets } from './features/inboxes/reseal.ts';

const USAGE = `parley <command>
  migrate                       apply database migrations (also done at every start)
  seed                          create the demo organization and users (refused in production)
  create-platform-admin --username NAME --password PASS [--email E] [--organization SLUG]
                                create or promote a platform administrator
  reseal-secrets                re-encrypt secrets at rest with the first key of ENCRYPTION_KEYS`;

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  const log = pino(loggerOptions(config.logLevel === 'silent' ? 'silent' : 'info'));
  const database = createDb(config.databaseUrl, { preparedStatements: config.databasePreparedStatements });
  try {
    await runMigrations(database.db, log);
    if (command === 'migrate') return 0;
    const services = createServices({ config, database, redis: null, jwtSecret: await resolveJwtSecret(config, log) });
    const d = config.defaultOrganization;
    if (command === 'seed') {
      await services.orgs.ensure(d.slug, d.name, d.registrationOpen);
      const summary = await seedDemo(services, config);
      process.stdout.write(`demo organization "${summary.organization}": created ${summary.created.join(', ') || 'nothing (already there)'}\n`);
      return 0;
    }
    if (command === 'create-platform-admin') {
      const { values } = parseArgs({ args: rest, options: { username: { type: 'string' }, password: { type: 'string' }, email: { type: 'string' }, organization: { type: 'string' } } });
      if (!values.username || !values.password || values.password.length < 8) {
        process.stderr.write('create-platform-admin needs --username and --password (8 characters or more)\n');
        return 2;
      }
      const org = values.organization ? await services.orgs.getBySlug(values.organization) : await services.orgs.ensure(d.slug, d.name, d.registrationOpen);
      if (!org) {
        process.stderr.write(`no organization with slug "${values.organization}"\n`);
        return 2;
      }
      const user = await ensurePlatformAdmin(services, org.id, { username: values.username, password: values.password, email: values.email ?? null });
      process.stdout.write(`platform admin "${user.username}" ready in organization "${org.slug}"\n`);
      return 0;
    }
    if (command === 'reseal-secrets') {
      const n = await resealSecrets(database.db, services.secrets);
      process.stdout.write(`resealed with key "${services.secrets.currentKeyId}": ${n.inboxes} inbox credentials, ${n.webhooks} webhook secrets\n`);
      return 0;
    }
    process.stderr.write(`${USAGE}\n`);
    return command ? 2 : 0;
  } finally {
    await database.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
