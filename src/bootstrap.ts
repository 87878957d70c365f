import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import { seedDemo } from './demo/demo-seed.ts';
import { randomToken } from './platform/ids.ts';
import type { Services } from './services.ts';
import { migrateToLatest } from './storage/migrate.ts';
import type { DB } from './storage/schema.ts';

/**
 * The access-token secret: JWT_SECRET, or (development and test only) one made once and kept in
 * `<DATA_DIR>/jwt-secret` so tokens survive restarts. Production refuses to start without it (config).
 */
export async function resolveJwtSecret(config: Readonly<Config>, log: Pick<Logger, 'warn'>): Promise<string> {
  if (config.jwtSecret) return config.jwtSecret;
  const file = join(config.dataDir, 'jwt-secret');
  try {
    const kept = (await readFile(file, 'utf8')).trim();
    if (kept.length >= 32) return kept;
  } catch {
    // not made yet
  }
  await mkdir(config.dataDir, { recursive: true });
  const secret = randomToken(48);
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  log.warn({ file }, 'JWT_SECRET is not set: generated one and kept it in the data folder (set JWT_SECRET in production)');
  return secret;
}

export async function runMigrations(db: Kysely<DB>, log: Pick<Logger, 'info'>): Promise<void> {
  const result = await migrateToLatest(db as unknown as Kysely<unknown>);
  const applied = result.results?.filter((r) => r.status === 'Success').map((r) => r.migrationName) ?? [];
  if (applied.length) log.info({ applied }, 'database migrated');
}

/** Start-up data: the default organization, the configured platform admin, demo data when asked. */
export async function ensureStartupData(services: Services, config: Readonly<Config>, log: Pick<Logger, 'info' | 'warn'>): Promise<void> {
  const d = config.defaultOrganization;
  const org = await services.orgs.ensure(d.slug, d.name, d.registrationOpen);
  if (config.platformAdmin) {
    await ensurePlatformAdmin(services, org.id, config.platformAdmin);
  }
  if (config.seedDemo) {
    const summary = await seedDemo(services, config);
    log.info(summary, 'demo data ready');
  }
}

/** Create (or promote) the platform admin in the given organization. Idempotent. */
export async function ensurePlatformAdmin(services: Services, orgId: string, a: { username: string; password: string; email: string | null }) {
  const existing = (await services.users.findLoginCandidates(a.username, orgId)).find((u) => u.username === a.username.toLowerCase());
  if (existing) {
    if (existing.platform_admin !== 1 || existing.role !== 'admin') return services.users.doUpdate(orgId, existing.id, { platform_admin: 1, role: 'admin', active: 1 });
    return existing;
  }
  return services.users.doCreate({ orgId, username: a.username, email: a.email, name: a.username, password: a.password, role: 'admin', platformAdmin: true });
}
