/**
 * Schema pieces every request schema shares: the `errorMessage` annotation, case-insensitive
 * pattern text, and the http(s) URL a callback or webhook may name.
 */
import { Type } from 'typebox';

/**
 * `errorMessage` (the ajv-errors convention; plain Ajv ignores it) replaces Ajv's "must match
 * pattern …" in the 400 the API answers, after the field's name (app.ts). In the document it is an
 * annotation.
 */
export const says = (errorMessage: string) => ({ errorMessage });

/** Either case for every letter: JSON Schema's patterns (ECMA-262) have no `i` flag. */
export const anyCase = (text: string): string =>
  text.replace(/[a-z]/gi, (letter) => `[${letter.toUpperCase()}${letter.toLowerCase()}]`);

/** A dotted-quad IPv4 address; the other spellings URL parsers take (0x7f.1, 127.1, 2130706433) are refused. */
const IPV4 = '(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const H16 = '[0-9A-Fa-f]{1,4}';
const LS32 = `(?:${H16}:${H16}|${IPV4})`;
/** RFC 3986's IPv6address. */
const IPV6 = [
  `(?:${H16}:){6}${LS32}`,
  `::(?:${H16}:){5}${LS32}`,
  `(?:${H16})?::(?:${H16}:){4}${LS32}`,
  `(?:(?:${H16}:){0,1}${H16})?::(?:${H16}:){3}${LS32}`,
  `(?:(?:${H16}:){0,2}${H16})?::(?:${H16}:){2}${LS32}`,
  `(?:(?:${H16}:){0,3}${H16})?::${H16}:${LS32}`,
  `(?:(?:${H16}:){0,4}${H16})?::${LS32}`,
  `(?:(?:${H16}:){0,5}${H16})?::${H16}`,
  `(?:(?:${H16}:){0,6}${H16})?::`,
].join('|');
const LABEL = '[A-Za-z0-9_-]+';
/**
 * A host name whose last label is not a number: URL parsers read such a host as an IPv4 address
 * (`a.1` fails, `1.2.3` is 1.2.0.3). Only negative lookaheads: generators such as Hypothesis's
 * cannot draw strings for a positive one.
 */
const NAME = `(?:${LABEL}\\.)*(?!(?:[0-9]+|0[Xx][0-9A-Fa-f]*)\\.?(?:[:/?]|$))${LABEL}\\.?`;
/** At most 253 characters of host, as DNS allows. */
const HOST_LENGTH = '(?![^:/?#]{254})';
const PORT = '(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';

/**
 * An absolute http(s) URI (RFC 3986: ASCII, percent-encoded) with a host, an optional port, and
 * no credentials or fragment. Where it may point (no private networks unless allowed; a host name
 * must not resolve only to blocked addresses) is the deployment's to say: checked at create, and
 * again when connecting (destination-guard.ts).
 */
export const HttpUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  format: 'uri',
  pattern: `^${anyCase('http')}[Ss]?://${HOST_LENGTH}(?:${IPV4}|\\[(?:${IPV6})\\]|${NAME})(?::${PORT}?)?(?:[/?][^#]*)?$`,
  description:
    'absolute http(s) URL (RFC 3986, so IDNs in punycode), without user:password@ or #fragment; a destination ' +
    'on a private, loopback or link-local network is refused unless ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS or ' +
    'ASYNCQUEUE_ALLOWED_DESTINATIONS allows it (400 naming the field)',
  ...says('must be an absolute http or https URL, without credentials or #fragment'),
});
