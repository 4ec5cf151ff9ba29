/** Reading request headers in the tools' loopback receivers. */
import type { IncomingHttpHeaders } from 'node:http';

/** The header's value, the first one when it was sent more than once. */
export function firstHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
