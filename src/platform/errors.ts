/**
 * One error type for everything a client may see (STYLE.md §E). `code` is stable and machine-readable,
 * `status` is the HTTP status, `message` is safe for end users, `data` carries structured fields.
 * The `cause` is for logs only and is never serialized.
 */
export const ERROR_CODES = {
  'request.invalid': 400,
  'request.invalid_json': 400,
  'request.too_large': 413,
  'request.unsupported_media_type': 415,
  'validation.failed': 400,
  'route.not_found': 404,
  'rate_limited': 429,
  'auth.required': 401,
  'auth.invalid_token': 401,
  'auth.token_expired': 401,
  'auth.session_revoked': 401,
  'auth.invalid_credentials': 401,
  'auth.refresh_invalid': 401,
  'auth.refresh_reused': 401,
  'auth.user_inactive': 403,
  'auth.registration_closed': 403,
  'auth.role_not_allowed': 403,
  'auth.organization_required': 400,
  'auth.unknown_organization': 401,
  'auth.user_required': 400,
  'auth.on_behalf_invalid': 403,
  'forbidden': 403,
  'not_found': 404,
  'user.not_found': 404,
  'user.username_taken': 409,
  'user.email_taken': 409,
  'user.invalid_password': 400,
  'user.last_admin': 409,
  'organization.not_found': 404,
  'organization.slug_taken': 409,
  'api_key.not_found': 404,
  'webhook.not_found': 404,
  'webhook.url_not_allowed': 400,
  'outbox.not_found': 404,
  'conversation.not_found': 404,
  'conversation.archived': 409,
  'conversation.not_member': 403,
  'conversation.name_taken': 409,
  'conversation.invalid_members': 400,
  'conversation.not_public': 403,
  'message.not_found': 404,
  'message.conflict': 409,
  'file.not_found': 404,
  'file.too_large': 413,
  'file.invalid_attachment': 400,
  'file.range_not_satisfiable': 416,
  'inbox.not_found': 404,
  'inbox.name_taken': 409,
  'contact.not_found': 404,
  'contact.invalid_phone': 400,
  'contact.phone_taken': 409,
  'session.not_found': 404,
  'session.exists': 409,
  'chatwoot.not_configured': 404,
  'support.invalid_transition': 409,
  'support.invalid_assignee': 400,
  'search.invalid_query': 400,
  'search.unsupported_filter': 400,
  'conflict': 409,
  'service.unavailable': 503,
  'realtime.upgrade_required': 426,
  'internal': 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data: Record<string, unknown> = {},
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.status = options?.status ?? ERROR_CODES[code];
  }
}

/**
 * The single answer for "does not exist" and "exists but you may not see it", so that a
 * probe cannot tell the two apart (SECURITY.md class A).
 */
export function notFound(code: Extract<ErrorCode, `${string}not_found`> = 'not_found', what = 'Resource'): AppError {
  return new AppError(code, `${what} not found`);
}

export function forbidden(message = 'You are not allowed to do this'): AppError {
  return new AppError('forbidden', message);
}

export class RateLimitedError extends AppError {
  constructor(readonly retryAfterSeconds: number, scope: string) {
    super('rate_limited', 'Too many requests, retry later', { retry_after: retryAfterSeconds, scope });
  }
}
