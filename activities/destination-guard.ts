/**
 * SSRF guard for callback and webhook URLs.
 *
 * Users choose where AsyncQueue sends requests, so without this guard a task could make the
 * worker talk to loopback services, the cloud metadata endpoint or anything on the private
 * network. The guard works at two moments:
 *
 * - `checkUrl` at create time, so an obviously bad URL is refused with a helpful message before a
 *   task exists;
 * - `createDispatcher` at connect time, which is the check that actually protects: it vets the
 *   very addresses the socket connects to, so a name that resolves differently later (DNS
 *   rebinding) cannot get through.
 *
 * node:net's BlockList matches addresses against the allow-list's ranges. ipaddr.js does what
 * BlockList cannot: name the special-purpose range an address is in (loopback, private, NAT64, …),
 * pull the IPv4 address out of the IPv6 forms that embed one, and turn an address into the text
 * BlockList reads; net.isIP, in front of it, refuses the legacy IPv4 spellings (0x7f.1, 127.1).
 */
import dns from 'node:dns';
import net, { BlockList } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';
import { ConfigError, DestinationBlockedError } from './errors.js';
import {
  parseIp,
  parseAllowEntry,
  requestedFamily,
  isLocalhostName,
  normalizeHost,
  type IPAddress,
  type AllowedRange,
} from './allowed-destinations.js';

export { parseAllowedDestinations } from './allowed-destinations.js';

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

export interface DestinationGuardOptions {
  /** true lifts the block entirely. */
  allowPrivateNetworks: boolean;
  /** Hostnames (exact, case-insensitive), IP addresses, or CIDR ranges allowed despite the block. */
  allowedDestinations: readonly string[];
  /** Default: `dns.promises.lookup(host, { all: true, verbatim: true })`. */
  resolve?: Resolver;
  /** How long `checkUrl` waits for `resolve` before it lets the URL through (default 1 s). */
  checkTimeoutMs?: number;
}

const ALLOW_PRIVATE_VARIABLE = 'ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS';
const ALLOWED_DESTINATIONS_VARIABLE = 'ASYNCQUEUE_ALLOWED_DESTINATIONS';
const REMEDY = `set ${ALLOW_PRIVATE_VARIABLE}=true or add it to ${ALLOWED_DESTINATIONS_VARIABLE}`;

// Only 2000::/3 is allocated for global unicast; ipaddr.js calls the rest of the unlisted space
// 'unicast' too, which would let through e.g. the deprecated IPv4-compatible ::a.b.c.d form.
const IPV6_GLOBAL_UNICAST: [ipaddr.IPv6, number] = [ipaddr.IPv6.parse('2000::'), 3];
const NAT64_WELL_KNOWN: [ipaddr.IPv6, number] = [ipaddr.IPv6.parse('64:ff9b::'), 96];

const RANGE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT (100.64.0.0/10) address',
  private: 'a private network address',
  uniqueLocal: 'a unique local (private) address',
  reserved: 'a reserved address',
  rfc6052: 'a local-use NAT64 address',
  teredo: 'a Teredo tunnelling address',
  deprecatedSiteLocal: 'a site-local address',
};

const defaultResolver: Resolver = async (hostname) => {
  const results = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return results.map((r) => ({ address: r.address, family: r.family === 6 ? 6 : 4 }));
};

export class DestinationGuard {
  readonly #allowPrivateNetworks: boolean;
  readonly #allowedHosts: ReadonlySet<string>;
  // One list per family: BlockList would also match an IPv4 address against an IPv6 range that
  // covers ::ffff:0:0/96 (::/0, say), which an entry written for IPv6 must not allow.
  readonly #allowedIPv4 = new BlockList();
  readonly #allowedIPv6 = new BlockList();
  readonly #resolve: Resolver;
  readonly #checkTimeoutMs: number;

  constructor(options: DestinationGuardOptions) {
    this.#allowPrivateNetworks = options.allowPrivateNetworks;
    this.#resolve = options.resolve ?? defaultResolver;
    this.#checkTimeoutMs = options.checkTimeoutMs ?? 1_000;
    const hosts = new Set<string>();
    for (const raw of options.allowedDestinations) {
      const parsed = parseAllowEntry(raw.trim());
      if (typeof parsed === 'string') {
        throw new ConfigError('allowedDestinations', `"${raw}" ${parsed}`);
      }
      if (parsed.kind === 'host') hosts.add(parsed.host);
      else this.#allowRange(parsed.range);
    }
    this.#allowedHosts = hosts;
  }

  #allowRange({ network, prefix }: AllowedRange): void {
    const family = network.kind();
    const list = family === 'ipv4' ? this.#allowedIPv4 : this.#allowedIPv6;
    const address = withoutZone(network);
    if (prefix === (family === 'ipv4' ? 32 : 128)) list.addAddress(address, family);
    else list.addSubnet(address, prefix, family);
  }

  /**
   * BlockList matches a socket's view of the address: ::ffff:a.b.c.d against the IPv4 ranges
   * (which it does itself), any other IPv6 address against the IPv6 ones.
   */
  #inAllowedRange(ip: IPAddress): boolean {
    if (ip.kind() === 'ipv4') return this.#allowedIPv4.check(ip.toString(), 'ipv4');
    const v6 = ip as ipaddr.IPv6;
    const list = v6.isIPv4MappedAddress() ? this.#allowedIPv4 : this.#allowedIPv6;
    return list.check(withoutZone(v6), 'ipv6');
  }

  /** true when a literal IP address may be contacted (hostname given = the name it came from, for hostname allow-list entries). */
  isAddressAllowed(address: string, hostname?: string): boolean {
    return this.#blockReason(address, hostname) === undefined;
  }

  /** Resolve url's host and throw DestinationBlockedError unless at least one of its addresses may be contacted. */
  async checkUrl(url: URL): Promise<void> {
    const host = normalizeHost(url.hostname);
    if (host === '') throw new DestinationBlockedError(host, 'the URL has no host');
    if (this.#allowPrivateNetworks || this.#allowedHosts.has(host)) return;

    if (net.isIP(host) !== 0) {
      const reason = this.#blockReason(host);
      if (reason !== undefined) throw blocked(host, `${host} is ${reason}`);
      return;
    }
    if (isLocalhostName(host)) throw blocked(host, `${host} is a localhost name`);

    let addresses: Array<{ address: string }>;
    try {
      addresses = await withTimeout(this.#resolve(url.hostname), this.#checkTimeoutMs);
    } catch {
      // A name that does not resolve yet may exist by the time the task runs. Refusing here would
      // add nothing: the connect-time lookup in createDispatcher vets whatever it resolves to then.
      // Nor may a slow resolver hold the create, which answers in milliseconds: one that drops
      // queries under a burst of creates answers only after its own timeout (glibc: 5 s per try),
      // and the lookups queue behind each other in libuv's four threads. So a lookup that takes
      // longer than checkTimeoutMs counts as "does not resolve yet".
      return;
    }
    this.#assertSomeAllowed(host, addresses);
  }

  /**
   * An undici Agent whose connect `lookup` resolves the host, checks EVERY resolved address, and
   * connects only to a checked one, so DNS rebinding cannot slip through.
   */
  createDispatcher(options: Agent.Options = {}): Agent {
    const { connect, ...agentOptions } = options;
    if (typeof connect === 'function') {
      throw new TypeError('createDispatcher cannot guard a custom connect function; pass connect options instead');
    }
    if (options.socketPath != null || connect?.socketPath != null) {
      throw new TypeError('createDispatcher cannot guard a socketPath connection');
    }

    // Giving undici a connect function makes it skip building its own connector from these
    // options, so they have to be applied here the same way undici would.
    const inner = buildConnector({
      maxCachedSessions: options.maxCachedSessions,
      allowH2: options.allowH2,
      timeout: options.connectTimeout,
      ...(typeof options.autoSelectFamily === 'boolean'
        ? { autoSelectFamily: options.autoSelectFamily, autoSelectFamilyAttemptTimeout: options.autoSelectFamilyAttemptTimeout }
        : undefined),
      ...connect,
      lookup: this.#lookup,
    });

    const guarded: buildConnector.connector = (connectOptions, callback) => {
      // Node skips `lookup` for literal IP hosts, so those have to be vetted before connecting.
      const host = normalizeHost(connectOptions.hostname);
      if (net.isIP(host) !== 0) {
        const reason = this.#blockReason(host);
        if (reason !== undefined) {
          const error = blocked(host, `${host} is ${reason}`);
          // Undici expects the connector to answer asynchronously, like a real socket would.
          process.nextTick(() => callback(error, null));
          return;
        }
      }
      inner(connectOptions, callback);
    };

    return new Agent({ ...agentOptions, connect: guarded });
  }

  readonly #lookup: net.LookupFunction = (hostname, options, callback) => {
    const host = normalizeHost(hostname);
    const nameTrusted = this.#allowPrivateNetworks || this.#allowedHosts.has(host);
    if (!nameTrusted && isLocalhostName(host)) {
      const error = blocked(host, `${host} is a localhost name`);
      process.nextTick(() => callback(error, []));
      return;
    }

    const wantFamily = requestedFamily(options.family);
    this.#resolve(hostname).then(
      (resolved) => {
        const candidates = resolved.filter((r) => wantFamily === 0 || net.isIP(r.address) === wantFamily);
        const allowed = candidates.filter((r) => this.isAddressAllowed(r.address, host));
        let error: Error | undefined;
        if (candidates.length === 0) {
          error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
        } else if (allowed.length === 0) {
          error = this.#noAllowedAddressError(host, candidates);
        }
        // Leave the promise chain so an exception in the callback is not mistaken for a DNS failure.
        process.nextTick(() => {
          if (error !== undefined) {
            callback(error, []);
          } else if (options.all === true) {
            callback(
              null,
              allowed.map((r) => ({ address: r.address, family: net.isIP(r.address) })),
            );
          } else {
            const first = allowed[0]!;
            callback(null, first.address, net.isIP(first.address));
          }
        });
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(`could not resolve ${hostname}`);
        process.nextTick(() => callback(failure, []));
      },
    );
  };

  #assertSomeAllowed(host: string, addresses: ReadonlyArray<{ address: string }>): void {
    // Nothing to judge yet; the connect-time lookup will refuse to connect to an empty answer.
    if (addresses.length === 0) return;
    if (addresses.some((a) => this.isAddressAllowed(a.address, host))) return;
    throw this.#noAllowedAddressError(host, addresses);
  }

  #noAllowedAddressError(host: string, addresses: ReadonlyArray<{ address: string }>): DestinationBlockedError {
    const first = addresses[0];
    const detail = first === undefined ? '' : ` (${first.address} is ${this.#blockReason(first.address, host) ?? 'blocked'})`;
    return blocked(host, `${host} resolves only to blocked addresses${detail}`);
  }

  /** Why `address` may not be contacted, phrased to follow "<address> is", or undefined if it may. */
  #blockReason(address: string, hostname?: string): string | undefined {
    const ip = parseIp(address);
    if (ip === undefined) return 'not a valid IP address';
    if (this.#allowPrivateNetworks) return undefined;
    if (hostname !== undefined && this.#allowedHosts.has(normalizeHost(hostname))) return undefined;
    if (this.#inAllowedRange(ip)) return undefined;
    return classify(ip);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function blocked(host: string, what: string): DestinationBlockedError {
  return new DestinationBlockedError(host, `${what}; ${REMEDY}`);
}

/** A reason phrase when `ip` is not a publicly routable unicast address, else undefined. */
function classify(ip: IPAddress): string | undefined {
  if (ip.kind() === 'ipv4') {
    const range = ip.range();
    return range === 'unicast' ? undefined : describeRange(range);
  }
  const v6 = ip as ipaddr.IPv6;
  // These forms end up at (or are translated to) an IPv4 address, so that address decides.
  const embedded = embeddedIPv4(v6);
  if (embedded !== undefined) {
    const inner = classify(embedded.ipv4);
    return inner === undefined ? undefined : `${embedded.form} of ${embedded.ipv4.toString()}, which is ${inner}`;
  }
  const range = v6.range();
  if (range !== 'unicast') return describeRange(range);
  if (!v6.match(IPV6_GLOBAL_UNICAST)) return 'outside the IPv6 global unicast range 2000::/3';
  return undefined;
}

function embeddedIPv4(ip: ipaddr.IPv6): { form: string; ipv4: ipaddr.IPv4 } | undefined {
  const p = ip.parts;
  const fromWords = (high: number, low: number): ipaddr.IPv4 => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  switch (ip.range()) {
    case 'ipv4Mapped':
      return { form: 'an IPv4-mapped address', ipv4: fromWords(p[6] ?? 0, p[7] ?? 0) };
    case 'rfc6145':
      return { form: 'an IPv4-translated address', ipv4: fromWords(p[6] ?? 0, p[7] ?? 0) };
    case '6to4':
      return { form: 'a 6to4 address', ipv4: fromWords(p[1] ?? 0, p[2] ?? 0) };
    case 'rfc6052':
      // Only the well-known /96 prefix has a fixed embedding; local-use NAT64 prefixes
      // (64:ff9b:1::/48) place the IPv4 address where the operator chose, so they stay blocked.
      return ip.match(NAT64_WELL_KNOWN) ? { form: 'a NAT64 address', ipv4: fromWords(p[6] ?? 0, p[7] ?? 0) } : undefined;
    default:
      return undefined;
  }
}

function describeRange(range: string): string {
  return RANGE_DESCRIPTIONS[range] ?? `a special-purpose address (${range})`;
}

/** The address as BlockList reads it; a zone (fe80::1%eth0) does not change which range it is in. */
function withoutZone(ip: IPAddress): string {
  return ip.kind() === 'ipv4' ? ip.toString() : new ipaddr.IPv6((ip as ipaddr.IPv6).parts).toString();
}
