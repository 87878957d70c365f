/**
 * Roles. Five are built in; any other lower-case role string is host-defined (seed 002's buyer,
 * developer, broker...) and has the permissions of `member`.
 */
export const BUILT_IN_ROLES = ['admin', 'super-agent', 'agent', 'member', 'customer'] as const;
export type BuiltInRole = (typeof BUILT_IN_ROLES)[number];

/** Roles that registration never grants: only an admin (or the host's token) gives them. */
export const STAFF_ROLES: readonly string[] = ['admin', 'super-agent', 'agent'];

export const ROLE_PATTERN = '^[a-z][a-z0-9_-]{0,31}$';
const ROLE_RE = new RegExp(ROLE_PATTERN);

export const isValidRole = (role: string): boolean => ROLE_RE.test(role);

/** The built-in role whose permissions a role string carries. */
export function baseRole(role: string): BuiltInRole {
  return (BUILT_IN_ROLES as readonly string[]).includes(role) ? (role as BuiltInRole) : 'member';
}

export const isStaffRole = (role: string): boolean => STAFF_ROLES.includes(role);
