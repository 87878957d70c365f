/** A request header's value: the first of repeated ones (Node gives arrays only for a few, e.g. set-cookie). */
export function firstHeader(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
