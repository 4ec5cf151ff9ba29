/**
 * The allow-list (ASYNCQUEUE_ALLOWED_DESTINATIONS) and the address and host name forms the
 * destination guard compares: parsing, normalising, and the entries' own checks.
 */
import net from 'node:net';
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';
import { ConfigError } from './errors.js';

export type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;

export interface AllowedRange {
  network: IPAddress;
  prefix: number;
}

export type AllowEntry = { kind: 'host'; host: string; text: string } | { kind: 'range'; range: AllowedRange; text: string };

/**
 * Parse a comma-separated list of hostnames, IP addresses and CIDR ranges, as found in
 * ASYNCQUEUE_ALLOWED_DESTINATIONS. Throws a ConfigError naming `variable` and the bad entry.
 */
export function parseAllowedDestinations(raw: string | undefined, variable: string): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((part, index) => {
    const entry = part.trim();
    const position = `entry ${index + 1}`;
    if (entry === '') throw new ConfigError(variable, `${position} is empty`);
    // A URL may carry credentials; refuse it without echoing it into logs.
    if (entry.includes('://') || entry.includes('@')) {
      throw new ConfigError(variable, `${position} looks like a URL; give a bare hostname, IP address or CIDR range`);
    }
    const parsed = parseAllowEntry(entry);
    if (typeof parsed === 'string') throw new ConfigError(variable, `${position} "${entry}" ${parsed}`);
    return parsed.text;
  });
}

/**
 * Strict parse: ipaddr.js alone accepts legacy IPv4 spellings such as 0x7f.1, which resolvers
 * and sockets may interpret differently; net.isIP only accepts canonical forms.
 */
export function parseIp(text: string): IPAddress | undefined {
  const bare = stripBrackets(text);
  if (net.isIP(bare) === 0) return undefined;
  try {
    return ipaddr.parse(bare);
  } catch {
    return undefined;
  }
}

export function parseAllowEntry(entry: string): AllowEntry | string {
  if (entry === '') return 'is empty';
  const slash = entry.indexOf('/');
  if (slash !== -1) {
    const addressPart = stripBrackets(entry.slice(0, slash));
    const prefixPart = entry.slice(slash + 1);
    const network = addressPart.includes('%') ? undefined : parseIp(addressPart);
    if (network === undefined) return 'is not a valid CIDR range (bad address)';
    const max = network.kind() === 'ipv4' ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefixPart) || Number(prefixPart) > max) {
      return `is not a valid CIDR range (prefix length must be 0-${max})`;
    }
    return { kind: 'range', range: normalizeRange(network, Number(prefixPart)), text: entry };
  }

  if (net.isIP(stripBrackets(entry)) !== 0) {
    const address = parseIp(entry);
    if (address === undefined || entry.includes('%')) return 'is not a valid IP address';
    return {
      kind: 'range',
      range: normalizeRange(address, address.kind() === 'ipv4' ? 32 : 128),
      text: entry,
    };
  }

  const host = normalizeHost(isAscii(entry) ? entry : domainToASCII(entry));
  if (host === '' || host.length > 253 || !host.split('.').every((label) => HOSTNAME_LABEL.test(label))) {
    return 'is not a valid hostname, IP address or CIDR range';
  }
  // URL parsers read a numeric last label as an IPv4 address (10.1, 2130706433), so such an
  // entry could never match a URL host by name.
  if (/^(\d+|0x[0-9a-f]*)$/.test(host.slice(host.lastIndexOf('.') + 1))) {
    return 'looks like an IP address but is not a valid one';
  }
  return { kind: 'host', host, text: host };
}

const HOSTNAME_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** An IPv6 entry for the IPv4-mapped space stands for IPv4 addresses, which is how they are compared. */
export function normalizeRange(network: IPAddress, prefix: number): AllowedRange {
  if (network.kind() === 'ipv6' && (network as ipaddr.IPv6).isIPv4MappedAddress() && prefix >= 96) {
    return { network: (network as ipaddr.IPv6).toIPv4Address(), prefix: prefix - 96 };
  }
  return { network, prefix };
}

export function requestedFamily(family: number | string | undefined): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

export function isLocalhostName(host: string): boolean {
  // RFC 6761 reserves these for loopback; resolvers may answer them without asking DNS.
  return host === 'localhost' || host.endsWith('.localhost');
}

export function normalizeHost(host: string): string {
  let h = stripBrackets(host).toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

export function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Only ASCII code points: a name already in its punycode (or plain) form. */
export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
