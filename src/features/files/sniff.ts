import { fileTypeFromBuffer } from 'file-type';
import { imageSize } from 'image-size';

/** How many leading bytes of an upload are kept to sniff its type and read image dimensions. */
export const SNIFF_BYTES = 256 * 1024;

// The WHATWG MIME Sniffing "HTML" patterns: what a browser would render as a page.
const HTML_TAGS = ['!doctype html', 'html', 'head', 'script', 'iframe', 'h1', 'div', 'font', 'table', 'a', 'style', 'title', 'b', 'body', 'br', 'p', '!--'];

/**
 * The content type of an upload, from its first bytes only: binary signatures (file-type), then
 * the text formats a browser could execute (HTML, SVG, XML), then plain text; anything else is
 * application/octet-stream.
 */
export async function sniffContentType(head: Uint8Array): Promise<string> {
  const binary = await fileTypeFromBuffer(head).catch(() => undefined);
  if (binary) return binary.mime === 'application/xml' ? sniffMarkup(head) ?? 'text/xml' : binary.mime;
  return sniffMarkup(head) ?? (looksLikeText(head) ? 'text/plain' : 'application/octet-stream');
}

function sniffMarkup(head: Uint8Array): string | null {
  const text = Buffer.from(head.subarray(0, 4096)).toString('latin1').replace(/^\xef\xbb\xbf/, '');
  const start = text.trimStart().toLowerCase();
  if (/<svg[\s>/]/.test(start.slice(0, 4096))) return 'image/svg+xml';
  for (const tag of HTML_TAGS) {
    if (start.startsWith(`<${tag}`) && /^[\s>]/.test(start.slice(tag.length + 1) || ' ')) return 'text/html';
  }
  if (start.startsWith('<?xml')) return /<html[\s>]/.test(start) ? 'application/xhtml+xml' : 'text/xml';
  return null;
}

function looksLikeText(head: Uint8Array): boolean {
  for (const b of head) {
    // The WHATWG "binary data byte" set: controls other than tab, newlines, form feed and escape.
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) return false;
  }
  return true;
}

const DIMENSIONED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** Width and height of a PNG, JPEG, GIF or WebP image from its first bytes; null when unknown. */
export function imageDimensions(contentType: string, head: Uint8Array): { width: number; height: number } | null {
  if (!DIMENSIONED.has(contentType)) return null;
  try {
    const { width, height } = imageSize(head);
    return Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 ? { width, height } : null;
  } catch {
    return null;
  }
}
