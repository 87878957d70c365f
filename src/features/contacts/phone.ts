import { parsePhoneNumberWithError, type CountryCode } from 'libphonenumber-js/max';

/**
 * Phone numbers (CONNECTORS.md §8): validated with libphonenumber-js's full (`max`) metadata and
 * stored in E.164. Brazilian mobiles exist in two forms — with the ninth digit (55 DDD 9 XXXXXXXX,
 * 13 digits) and, for accounts registered before it, without (12 digits); both are the same
 * person, so lookups try both. Landlines (12 digits, subscriber starting with 2–5) never get a 9.
 */
export type PhoneResult = { ok: true; e164: string; variants: string[]; type: string | undefined } | { ok: false; reason: string };

export function normalizePhone(input: string, defaultCountry: CountryCode = 'BR'): PhoneResult {
  const raw = input.trim();
  if (!/^\+?[\d\s().-]{6,24}$/.test(raw)) return { ok: false, reason: 'not a phone number' };
  // Platform ids come without "+" (wa_id 5581987885943): digits of a full international number.
  const digits = raw.replace(/\D/g, '');
  const candidates = raw.startsWith('+') || digits.length > 11 ? [`+${digits}`] : [raw];
  for (const c of candidates) {
    let parsed;
    try {
      parsed = parsePhoneNumberWithError(c, defaultCountry);
    } catch {
      continue;
    }
    let e164 = parsed.number;
    if (!parsed.isValid()) {
      // A 12-digit Brazilian mobile without its ninth digit: valid once the 9 is inserted.
      const withNine = brazilWithNinthDigit(e164);
      if (!withNine) return { ok: false, reason: 'not a valid number for its country' };
      e164 = withNine;
    }
    const p = parsePhoneNumberWithError(e164);
    return { ok: true, e164, variants: phoneVariants(e164), type: p.getType() };
  }
  return { ok: false, reason: 'not a phone number' };
}

/**
 * Every form a number may arrive in: a Brazilian mobile with and without the ninth digit; any other
 * number as it is. Input and output in E.164.
 */
export function phoneVariants(e164: string): string[] {
  const m = /^\+55(\d{2})(\d+)$/.exec(e164);
  if (!m) return [e164];
  const [, ddd, sub] = m as unknown as [string, string, string];
  if (sub.length === 9 && sub.startsWith('9')) return [e164, `+55${ddd}${sub.slice(1)}`];
  if (sub.length === 8 && /^[6-9]/.test(sub)) return [`+55${ddd}9${sub}`, e164];
  return [e164];
}

/** +55 DDD + 8 digits starting 6–9 → the same number with the 9, when that is a valid mobile. */
function brazilWithNinthDigit(e164: string): string | null {
  const m = /^\+55(\d{2})([6-9]\d{7})$/.exec(e164);
  if (!m) return null;
  const candidate = `+55${m[1]}9${m[2]}`;
  try {
    const p = parsePhoneNumberWithError(candidate);
    return p.isValid() && p.getType() === 'MOBILE' ? candidate : null;
  } catch {
    return null;
  }
}
