import type { NeutralStatus } from '../neutral.ts';

type Status = NeutralStatus['status'];

/** Baileys `WebMessageInfo.Status` by number (Evolution maps it with the same table). */
const BY_NUMBER: readonly Status[] = ['failed', 'queued', 'sent', 'delivered', 'read', 'played'];

/** Baileys names (Codechat v1, Evolution) and Codechat Go's lowercase receipt names (§9 status mapping). */
const BY_NAME: ReadonlyMap<string, Status> = new Map([
  ['ERROR', 'failed'],
  ['PENDING', 'queued'],
  ['SERVER_ACK', 'sent'],
  ['DELIVERY_ACK', 'delivered'],
  ['READ', 'read'],
  ['PLAYED', 'played'],
  ['DELETED', 'deleted'],
  ['sent', 'sent'],
  ['delivered', 'delivered'],
  ['read', 'read'],
  ['played', 'played'],
  ['server_error', 'failed'],
  ['retry', 'queued'],
]);

/**
 * The neutral status of a Baileys / Codechat status value: a number 0-5 (also as a numeric
 * string) or a name. Undefined for what carries no delivery meaning (Codechat Go `unknown`,
 * Evolution `EDITED`, anything new).
 */
export function neutralStatus(value: unknown): Status | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (Number.isInteger(n)) return BY_NUMBER[n];
  return typeof value === 'string' ? BY_NAME.get(value) : undefined;
}
