import { errors, jwtVerify, SignJWT } from 'jose';
import { AppError } from '../../platform/errors.ts';

/** Claims of Parley's own access tokens. */
export interface AccessClaims {
  sub: string;
  org: string;
  sid: string;
  exp: number;
}

export const PARLEY_ISSUER = 'parley';
const AUDIENCE = 'parley-api';

/**
 * Parley's access tokens: HS256 JWTs with iss "parley", bound to a session id (sid) so that
 * logout and revocation take effect at once (the session is checked whenever the token is resolved;
 * see PrincipalCache for how resolved tokens are reused).
 */
export class AccessTokens {
  readonly #key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#key = new TextEncoder().encode(secret);
  }

  get ttl(): number {
    return this.ttlSeconds;
  }

  async sign(userId: string, orgId: string, sessionId: string): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    return new SignJWT({ org: orgId, sid: sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(PARLEY_ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .sign(this.#key);
  }

  /** Verify signature, algorithm (HS256 only: `alg: none` and others are refused), issuer, audience and expiry. */
  async verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        issuer: PARLEY_ISSUER,
        audience: AUDIENCE,
        currentDate: new Date(this.now()),
      });
      const { sub, org, sid, exp } = payload;
      if (typeof sub !== 'string' || typeof org !== 'string' || typeof sid !== 'string' || typeof exp !== 'number') {
        throw new AppError('auth.invalid_token', 'Invalid token');
      }
      return { sub, org, sid, exp };
    } catch (err) {
      throw toAuthError(err);
    }
  }
}

/** jose errors → stable auth codes; the cause stays for logs. */
export function toAuthError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof errors.JWTExpired) return new AppError('auth.token_expired', 'The token has expired', {}, { cause: err });
  return new AppError('auth.invalid_token', 'Invalid token', {}, { cause: err });
}
