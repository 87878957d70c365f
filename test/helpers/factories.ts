import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { Services } from '../../src/services.ts';
import { call } from './new-test-app.ts';

export const PASSWORD = 'correct horse battery';

export interface TestUser {
  id: string;
  orgId: string;
  username: string;
  token: string;
  refreshToken: string;
}

const unique = (p: string) => `${p}${randomBytes(4).toString('hex')}`;

/** Create an organization directly through the service (as a platform bootstrap would). */
export async function makeOrg(services: Services, name = unique('org')) {
  return services.orgs.doCreate({ name, slug: name.toLowerCase() });
}

/** Create a user with a role in an organization and log them in over HTTP. */
export async function makeUser(app: FastifyInstance, services: Services, orgId: string, role = 'member', extra: { platformAdmin?: boolean; username?: string } = {}): Promise<TestUser> {
  const username = extra.username ?? unique(role.replace(/[^a-z]/g, ''));
  const row = await services.users.doCreate({ orgId, username, email: `${username}@example.test`, name: username, password: PASSWORD, role, platformAdmin: extra.platformAdmin ?? false });
  const org = await services.orgs.getRow(orgId);
  const res = await call(app, 'POST', '/api/v1/auth/login', { body: { username, password: PASSWORD, organization: org!.slug } });
  if (res.statusCode !== 200) throw new Error(`login failed for ${username}: ${res.body}`);
  return { id: row.id, orgId, username, token: res.data.token, refreshToken: res.data.refresh_token };
}

/** `count` users of one role in an organization, made and logged in one after another. */
export async function makeUsers(app: FastifyInstance, services: Services, orgId: string, count: number, role = 'member'): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (let i = 0; i < count; i++) users.push(await makeUser(app, services, orgId, role));
  return users;
}
