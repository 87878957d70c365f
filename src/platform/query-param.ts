/**
 * One parameter of a URL query string (the part after `?`), read as `URLSearchParams.get` reads
 * it: the first occurrence, `+` as a space, percent-decoded; null when absent. The usual case (no
 * escape up to the parameter, like a JWT in `?token=`) is found with string scans: URLSearchParams
 * decodes the whole query character by character, ~3 µs for a token's length on every WebSocket
 * connect. Anything to decode goes to URLSearchParams itself.
 */
export function queryParam(query: string, name: string): string | null {
  // Up to here, nothing is escaped ("%", or "+" for a space), so names and values read as written.
  const plain = Math.min(firstOr(query, '%'), firstOr(query, '+'));
  let at = 0;
  while (at < query.length) {
    const amp = query.indexOf('&', at);
    const end = amp === -1 ? query.length : amp;
    if (end > plain) break;
    // (A name never holds "&", so a match cannot run into the next pair.)
    if (query.startsWith(name, at)) {
      const after = at + name.length;
      if (after === end) return ''; // "name" alone: present and empty
      if (query.charCodeAt(after) === 61 /* = */) return query.slice(after + 1, end);
    }
    at = end + 1;
  }
  return plain === Infinity ? null : new URLSearchParams(query).get(name);
}

function firstOr(s: string, c: string): number {
  const i = s.indexOf(c);
  return i === -1 ? Infinity : i;
}
