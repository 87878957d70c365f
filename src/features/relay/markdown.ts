/**
 * Formatting between Chatwoot (Markdown: `**bold**`, `*italic*`, `~~strike~~`) and WhatsApp
 * (`*bold*`, `_italic_`, `~strike~`), CONNECTORS.md §5.1. A marker only counts around non-blank
 * text on one line, as both products render it; anything else is left alone.
 */
const around = (marker: string) => new RegExp(`(^|[^\\w${marker}])${marker}(\\S(?:[^\\n]*?\\S)??)${marker}(?![\\w${marker}])`, 'g');
const HOLD = '\u0000';

/** Chatwoot Markdown → WhatsApp. */
export function chatwootToWhatsApp(text: string): string {
  return text
    .replace(/\*\*(\S(?:[^\n]*?\S)??)\*\*/g, `${HOLD}$1${HOLD}`)
    .replace(around('\\*'), '$1_$2_')
    .replace(/~~(\S(?:[^\n]*?\S)??)~~/g, '~$1~')
    .replaceAll(HOLD, '*');
}

/** WhatsApp → Chatwoot Markdown. */
export function whatsAppToChatwoot(text: string): string {
  return text
    .replace(around('\\*'), `$1${HOLD}${HOLD}$2${HOLD}${HOLD}`)
    .replace(around('_'), '$1*$2*')
    .replace(around('~'), '$1~~$2~~')
    .replaceAll(HOLD, '*');
}
