import { AppError, forbidden } from '../platform/errors.ts';
import type { UserRow } from '../features/users/users.repo.ts';
import { baseRole, type BuiltInRole } from './roles.ts';

/**
 * Who is calling. Built by the HTTP auth plugin; services take it as their first argument and
 * call requireAccess before anything else (Zulip access_*, Immich utils/access.ts).
 */
export interface Principal {
  kind: 'user' | 'api_key';
  orgId: string;
  /** The acting user: the logged-in user, or the user an API key acts on behalf of. */
  userId: string | null;
  /** Effective role: the user's role, or 'admin' for an API key acting as itself. */
  role: string;
  platformAdmin: boolean;
  sessionId: string | null;
  apiKeyId: string | null;
  /** The acting user's row as read while authenticating this request (null for a key acting as itself). */
  user: UserRow | null;
}

/** Every permission in one table: which built-in roles hold it. Host-defined roles count as member. */
const MATRIX = {
  'org.read': ['admin', 'super-agent', 'agent', 'member', 'customer'],
  'org.update': ['admin'],
  'users.list': ['admin', 'super-agent', 'agent', 'member'],
  'users.read_staff': ['admin', 'super-agent', 'agent', 'member', 'customer'],
  'users.manage': ['admin'],
  'api_keys.manage': ['admin'],
  // Outgoing webhooks and the outbox (delivery log, redelivery): the org's integration setup.
  'integrations.manage': ['admin'],
  // Team chat: customers only ever see the conversations they are members of.
  'channels.create': ['admin', 'super-agent', 'agent', 'member'],
  'channels.browse_public': ['admin', 'super-agent', 'agent', 'member'],
  'dm.open': ['admin', 'super-agent', 'agent', 'member'],
  // Org-wide moderation: manage or delete any channel they can see (public ones, and those they
  // belong to: private conversations stay invisible to non-members), delete any message there.
  'conversations.moderate': ['admin'],
  // Customer conversations: inboxes are set up by admins; agents handle the conversations of the
  // inboxes they belong to; super-agents and admins see all of the organization's.
  'inboxes.manage': ['admin'],
  'support.handle': ['admin', 'super-agent', 'agent'],
  'support.all': ['admin', 'super-agent'],
  'contacts.manage': ['admin', 'super-agent', 'agent'],
} as const satisfies Record<string, readonly BuiltInRole[]>;

export type Permission = keyof typeof MATRIX;

/** Does the principal hold the permission? (No throw.) */
export function checkAccess(p: Principal, permission: Permission): boolean {
  return (MATRIX[permission] as readonly BuiltInRole[]).includes(baseRole(p.role));
}

/** Throw 403 unless the principal holds the permission. */
export function requireAccess(p: Principal, permission: Permission): void {
  if (!checkAccess(p, permission)) throw forbidden();
}

/** Throw unless the principal is a platform admin (organizations across tenants). */
export function requirePlatformAdmin(p: Principal): void {
  if (!p.platformAdmin) throw forbidden('Only a platform administrator can do this');
}

/** The acting user's id, or a clear error for an API key that acts as itself. */
export function requireUser(p: Principal): string {
  if (p.userId === null) throw new AppError('auth.user_required', 'This endpoint needs a user: send X-On-Behalf-Of with an API key');
  return p.userId;
}

/** Only a logged-in person, not an API key, passes: a leaked key must not be able to mint more keys. */
export function requireHumanUser(p: Principal): string {
  if (p.kind !== 'user') throw forbidden('API keys cannot do this');
  return requireUser(p);
}
