/** Time source, replaceable in tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

let lastMs = Number.NaN;
let lastIso = '';
/**
 * The clock's time as an ISO 8601 string. The last one is kept: under load many calls fall in the
 * same millisecond (a send makes one), and formatting a Date costs about a microsecond.
 */
export const isoNow = (clock: Clock = systemClock): string => {
  const ms = clock.now();
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
};
