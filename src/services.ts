import type { Redis } from 'ioredis';
import type { Config } from './config/config.ts';
import { ApiKeysRepo } from './features/api-keys/api-keys.repo.ts';
import { ApiKeysService } from './features/api-keys/api-keys.service.ts';
import { AuthRepo } from './features/auth/auth.repo.ts';
import { AuthService } from './features/auth/auth.service.ts';
import { Authenticator } from './features/auth/authenticator.ts';
import { HostJwtVerifier } from './features/auth/host-jwt.ts';
import { AccessTokens } from './features/auth/tokens.ts';
import { OrganizationsRepo } from './features/organizations/organizations.repo.ts';
import { OrganizationsService } from './features/organizations/organizations.service.ts';
import { UsersRepo } from './features/users/users.repo.ts';
import { UsersService } from './features/users/users.service.ts';
import { MemoryRateLimiter } from './limits/memory-rate-limiter.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import { RedisRateLimiter } from './limits/redis-rate-limiter.ts';
import { systemClock, type Clock } from './platform/clock.ts';
import type { Database } from './storage/db.ts';

export interface ServiceDeps {
  config: Readonly<Config>;
  database: Database;
  /** Set when REDIS_URL is configured: shared rate limits (and, later, the bus and presence). */
  redis: Redis | null;
  /** The resolved access-token secret (config, or the one kept in the data folder). */
  jwtSecret: string;
  clock?: Clock;
  /** Key prefix in Redis (tests use a random one). */
  redisPrefix?: string;
}

/** The composition root: every service, wired once. Backends are chosen here from config alone. */
export function createServices(deps: ServiceDeps) {
  const clock = deps.clock ?? systemClock;
  const { db } = deps.database;
  const limiter: RateLimiter = deps.redis ? new RedisRateLimiter(deps.redis, deps.redisPrefix ?? 'parley:') : new MemoryRateLimiter(() => clock.now());

  const users = new UsersService(new UsersRepo(db), clock);
  const orgs = new OrganizationsService(new OrganizationsRepo(db), users, clock);
  const apiKeys = new ApiKeysService(new ApiKeysRepo(db), clock);
  const tokens = new AccessTokens(deps.jwtSecret, deps.config.accessTokenTtlSeconds, () => clock.now());
  const auth = new AuthService(new AuthRepo(db), users, orgs, tokens, limiter, deps.config, clock);
  users.setSessionRevoker(auth);
  const authenticator = new Authenticator(tokens, auth, apiKeys, users, orgs, new HostJwtVerifier(deps.config.hostJwt), deps.config.hostJwt);

  return { clock, limiter, users, orgs, apiKeys, tokens, auth, authenticator };
}

export type Services = ReturnType<typeof createServices>;
