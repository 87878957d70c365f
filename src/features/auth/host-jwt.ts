import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { HostJwtConfig } from '../../config/config.ts';
import { AppError } from '../../platform/errors.ts';
import { toAuthError } from './tokens.ts';

/** What Parley takes from a host application's token, after verification and claim mapping. */
export interface HostIdentity {
  externalRef: string;
  organization: string | null;
  name: string | null;
  email: string | null;
  username: string | null;
  role: string | null;
}

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];

function claim(payload: JWTPayload, path: string): unknown {
  // Dotted paths reach nested claims, e.g. "app_metadata.role".
  let v: unknown = payload;
  for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

function str(v: unknown): string | null {
  if (typeof v === 'string' && v.trim() !== '') return v.trim();
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) return str(v[0]);
  return null;
}

/**
 * Verifies tokens issued by the host application: a shared HS256 secret, or RS256/ES256 keys
 * published at a JWKS URL (fetched and cached by jose). Only the algorithms of the configured
 * key kinds are accepted; `alg: none` never is.
 */
export class HostJwtVerifier {
  readonly #secret: Uint8Array | null;
  readonly #jwks: ReturnType<typeof createRemoteJWKSet> | null;

  constructor(private readonly config: HostJwtConfig) {
    this.#secret = config.secret ? new TextEncoder().encode(config.secret) : null;
    this.#jwks = config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 }) : null;
  }

  get enabled(): boolean {
    return this.#secret !== null || this.#jwks !== null;
  }

  async verify(token: string): Promise<HostIdentity> {
    let payload: JWTPayload;
    try {
      const { alg } = decodeProtectedHeader(token);
      const options = { issuer: this.config.issuer ?? undefined, audience: this.config.audience ?? undefined };
      if (alg && HMAC_ALGS.includes(alg) && this.#secret) {
        ({ payload } = await jwtVerify(token, this.#secret, { ...options, algorithms: HMAC_ALGS }));
      } else if (alg && ASYMMETRIC_ALGS.includes(alg) && this.#jwks) {
        ({ payload } = await jwtVerify(token, this.#jwks, { ...options, algorithms: ASYMMETRIC_ALGS }));
      } else {
        throw new AppError('auth.invalid_token', 'Invalid token');
      }
    } catch (err) {
      throw toAuthError(err);
    }
    const c = this.config.claims;
    const externalRef = str(claim(payload, c.subject));
    if (!externalRef) throw new AppError('auth.invalid_token', `The host token has no "${c.subject}" claim`);
    return {
      externalRef,
      organization: str(claim(payload, c.organization)) ?? this.config.defaultOrganization,
      name: str(claim(payload, c.name)),
      email: str(claim(payload, c.email)),
      username: str(claim(payload, c.username)),
      role: str(claim(payload, c.role)),
    };
  }
}
