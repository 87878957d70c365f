/**
 * Driver-agnostic storage errors (Mattermost store/errors.go). Repositories throw these; services
 * translate them into AppErrors.
 */
export class UniqueViolation extends Error {
  constructor(readonly constraint: string, options?: { cause?: unknown }) {
    super(`unique constraint violated: ${constraint}`, options);
    this.name = 'UniqueViolation';
  }
}

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/**
 * If `err` is a unique-constraint violation from better-sqlite3 or pg, return a UniqueViolation
 * naming the constraint (PostgreSQL) or the columns (SQLite: "UNIQUE constraint failed: users.org_id, users.username").
 */
export function asUniqueViolation(err: unknown): UniqueViolation | null {
  const e = err as DriverError;
  if (e?.code === '23505') return new UniqueViolation(String(e.constraint ?? 'unknown'), { cause: err });
  if (e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const cols = String(e.message ?? '').replace(/^UNIQUE constraint failed: /, '');
    return new UniqueViolation(cols, { cause: err });
  }
  return null;
}

/** Run `fn`; map a unique violation through `onUnique`, rethrow anything else. */
export async function mapUnique<T>(fn: () => Promise<T>, onUnique: (v: UniqueViolation) => Error): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const v = asUniqueViolation(err);
    throw v ? onUnique(v) : err;
  }
}
