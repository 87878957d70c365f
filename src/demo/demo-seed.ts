import type { Config } from '../config/config.ts';
import type { Services } from '../services.ts';

/** Seed 004's demo users, plus an admin, in the "demo" organization. */
export const DEMO_USERS = [
  { username: 'admin', name: 'Demo Admin', role: 'admin' },
  { username: 'agent1', name: 'Agent One', role: 'agent' },
  { username: 'agent2', name: 'Agent Two', role: 'super-agent' },
  { username: 'customer1', name: 'Customer One', role: 'customer' },
  { username: 'customer2', name: 'Customer Two', role: 'customer' },
] as const;
export const DEMO_PASSWORD = 'password123';
export const DEMO_ORG_SLUG = 'demo';

/** Idempotent: existing demo users are left as they are. Refused in production. */
export async function seedDemo(services: Services, config: Pick<Config, 'nodeEnv'>): Promise<{ organization: string; created: string[] }> {
  if (config.nodeEnv === 'production') throw new Error('Demo data is refused when NODE_ENV=production');
  const org = await services.orgs.ensure(DEMO_ORG_SLUG, 'Demo', true);
  const created: string[] = [];
  for (const u of DEMO_USERS) {
    const exists = (await services.users.findLoginCandidates(u.username, org.id)).length > 0;
    if (exists) continue;
    await services.users.doCreate({ orgId: org.id, username: u.username, email: `${u.username}@demo.parley.local`, name: u.name, password: DEMO_PASSWORD, role: u.role });
    created.push(u.username);
  }
  return { organization: DEMO_ORG_SLUG, created };
}
