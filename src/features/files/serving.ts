/**
 * How a stored file goes out over HTTP so that it can never run in our origin (SECURITY.md D):
 * which Content-Type, which Content-Disposition, and which byte range.
 */

// Anything a browser could render as a document or run as script is sent as bytes.
const EXECUTABLE = /(^text\/html|^text\/xml|^application\/xml|\+xml$|^image\/svg|javascript|ecmascript|^text\/css|^text\/xsl|^application\/x-shockwave-flash|^multipart\/|^text\/vtt|^application\/wasm)/i;

/** Raster images shown inline (an <img> cannot run them); everything else is a download. */
const INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** The Content-Type a stored file is served with: its sniffed type, unless a browser could execute it. */
export function servedContentType(sniffed: string): string {
  return EXECUTABLE.test(sniffed) ? 'application/octet-stream' : sniffed;
}

export function isInline(sniffed: string): boolean {
  return INLINE.has(sniffed);
}

/** `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266 / 8187). */
export function contentDisposition(kind: 'inline' | 'attachment', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Clean a client-sent file name: no folders, no control or bidi-override characters, ≤ 255 characters. */
export function cleanFilename(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = base.normalize('NFC').replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '').trim();
  const short = Array.from(cleaned).slice(0, 255).join('');
  return short === '' || short === '.' || short === '..' ? 'file' : short;
}

/**
 * The single byte range asked for by a `Range` header, against a file of `size` bytes:
 * null to send the whole file (no header, several ranges, or a header we do not parse — all
 * allowed by RFC 9110), 'unsatisfiable' for a 416.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  const [, from = '', to = ''] = m;
  if (from === '') {
    // Suffix: the last N bytes.
    const n = Number(to);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  // "bytes=5-3" is not a valid range: ignore the header.
  if (end < start) return null;
  return { start, end };
}
