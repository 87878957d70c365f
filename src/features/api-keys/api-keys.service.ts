import { requireAccess, requireHumanUser, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { notFound } from '../../platform/errors.ts';
import { newId, randomHex, randomToken, safeEqual, sha256Hex } from '../../platform/ids.ts';
import type { PrincipalCache } from '../../access/principal-cache.ts';
import type { ApiKeyRow, ApiKeysRepo } from './api-keys.repo.ts';

const KEY_RE = /^prl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** last_used_at is written at most this often per key, so a busy key does not write on every request. */
const TOUCH_EVERY_MS = 60_000;

export const toApiKeyDto = (k: ApiKeyRow) => ({
  id: k.id,
  name: k.name,
  prefix: `prl_${k.prefix}`,
  created_by: k.created_by,
  created_at: k.created_at,
  last_used_at: k.last_used_at,
  revoked_at: k.revoked_at,
});

/**
 * Organization API keys for the host backend: `prl_<16 hex prefix>_<43 chars secret>`. Only the
 * SHA-256 of the secret is stored (a 256-bit random secret needs no slow hash); the whole key is
 * shown once, at creation.
 */
export class ApiKeysService {
  readonly #touched = new Map<string, number>();

  constructor(
    private readonly repo: ApiKeysRepo,
    private readonly principals: PrincipalCache,
    private readonly clock: Clock,
  ) {}

  async create(p: Principal, name: string) {
    requireAccess(p, 'api_keys.manage');
    const userId = requireHumanUser(p);
    const prefix = randomHex(8);
    const secret = randomToken(32);
    const row = await this.repo.create({
      id: newId(),
      org_id: p.orgId,
      name,
      prefix,
      key_hash: sha256Hex(secret),
      created_by: userId,
      created_at: isoNow(this.clock),
      last_used_at: null,
      revoked_at: null,
    });
    return { ...toApiKeyDto(row), key: `prl_${prefix}_${secret}` };
  }

  async list(p: Principal) {
    requireAccess(p, 'api_keys.manage');
    return (await this.repo.list(p.orgId)).map(toApiKeyDto);
  }

  async revoke(p: Principal, id: string): Promise<void> {
    requireAccess(p, 'api_keys.manage');
    const row = await this.repo.revoke(p.orgId, id, isoNow(this.clock));
    if (!row) throw notFound('api_key.not_found', 'API key');
    await this.principals.invalidate({ apiKeyId: id });
  }

  /** Looks like one of our keys? (Routing between key and JWT in the Authorization header.) */
  static looksLikeKey(value: string): boolean {
    return value.startsWith('prl_');
  }

  /** The live key row for a presented key, or null (unknown, malformed, wrong secret, revoked). */
  async authenticate(presented: string): Promise<ApiKeyRow | null> {
    const m = KEY_RE.exec(presented);
    if (!m) return null;
    const row = await this.repo.getByPrefix(m[1]!);
    if (!row || row.revoked_at !== null || !safeEqual(row.key_hash, sha256Hex(m[2]!))) return null;
    const now = this.clock.now();
    if ((this.#touched.get(row.id) ?? 0) + TOUCH_EVERY_MS < now) {
      this.#touched.set(row.id, now);
      await this.repo.touch(row.id, new Date(now).toISOString());
    }
    return row;
  }
}
