import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Agent, request } from 'undici';
import { ConfigError, DestinationBlockedError } from '../src/shared/errors.js';
import { DestinationGuard, parseAllowedDestinations, type Resolver } from '../activities/destination-guard.js';

// Tests only ever talk to loopback: public addresses appear solely as resolver answers that are
// checked, never as connection targets.
const PUBLIC_V4 = '93.184.216.34';

const staticResolver =
  (table: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const addresses = table[hostname.toLowerCase()];
    if (addresses === undefined) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    }
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

const failingResolver: Resolver = async (hostname) => {
  throw new Error(`resolver must not be called (asked for ${hostname})`);
};

function guard(overrides: Partial<ConstructorParameters<typeof DestinationGuard>[0]> = {}): DestinationGuard {
  return new DestinationGuard({ allowPrivateNetworks: false, allowedDestinations: [], resolve: failingResolver, ...overrides });
}

function isBlocked(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof DestinationBlockedError && e.code === 'destination_blocked') return true;
  }
  return false;
}

describe('isAddressAllowed', () => {
  const blocked: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'IPv6 loopback'],
    ['10.0.0.1', '10/8'],
    ['172.16.0.1', '172.16/12'],
    ['172.31.255.255', '172.16/12 upper end'],
    ['192.168.1.1', '192.168/16'],
    ['fc00::1', 'fc00::/7'],
    ['fd12:3456::1', 'fc00::/7 (fd)'],
    ['169.254.169.254', 'metadata'],
    ['fe80::1', 'IPv6 link-local'],
    ['100.64.0.1', 'CGNAT'],
    ['224.0.0.1', 'IPv4 multicast'],
    ['ff02::1', 'IPv6 multicast'],
    ['0.0.0.0', 'unspecified v4'],
    ['::', 'unspecified v6'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['64:ff9b::7f00:1', 'NAT64 of loopback'],
    ['64:ff9b::a00:1', 'NAT64 of 10/8'],
    ['64:ff9b:1::1', 'local-use NAT64'],
    ['2002:7f00:1::', '6to4 of loopback'],
    ['2002:a9fe:a9fe::1', '6to4 of metadata'],
    ['2001::1', 'Teredo'],
    ['::7f00:1', 'deprecated IPv4-compatible'],
    ['2001:db8::1', 'documentation'],
  ];
  for (const [address, label] of blocked) {
    it(`blocks ${address} (${label})`, () => {
      assert.equal(guard().isAddressAllowed(address), false);
    });
  }

  it('allows public addresses, including their mapped and translated forms', () => {
    const g = guard();
    for (const address of [
      PUBLIC_V4,
      '1.1.1.1',
      '2606:4700:4700::1111',
      '::ffff:93.184.216.34',
      '64:ff9b::5db8:d822',
      '2002:5db8:d822::1',
    ]) {
      assert.equal(g.isAddressAllowed(address), true, address);
    }
  });

  it('rejects anything that is not an IP address, even when private networks are allowed', () => {
    for (const g of [guard(), guard({ allowPrivateNetworks: true })]) {
      for (const garbage of ['', 'example.com', '127.1', '0x7f000001', '2130706433', '1.2.3.4.5', ':::1']) {
        assert.equal(g.isAddressAllowed(garbage), false, garbage);
      }
    }
  });

  it('allowPrivateNetworks lifts the block entirely', () => {
    const g = guard({ allowPrivateNetworks: true });
    for (const [address] of blocked) assert.equal(g.isAddressAllowed(address), true, address);
  });

  it('allows exact IP entries', () => {
    const g = guard({ allowedDestinations: ['127.0.0.1', '::1'] });
    assert.equal(g.isAddressAllowed('127.0.0.1'), true);
    assert.equal(g.isAddressAllowed('::ffff:127.0.0.1'), true);
    assert.equal(g.isAddressAllowed('::1'), true);
    assert.equal(g.isAddressAllowed('127.0.0.2'), false);
  });

  it('allows CIDR entries, with IPv4 ranges also matching IPv4-mapped IPv6', () => {
    const g = guard({ allowedDestinations: ['10.1.0.0/16', 'fd00:1::/32'] });
    assert.equal(g.isAddressAllowed('10.1.2.3'), true);
    assert.equal(g.isAddressAllowed('::ffff:10.1.2.3'), true);
    assert.equal(g.isAddressAllowed('10.2.0.1'), false);
    assert.equal(g.isAddressAllowed('fd00:1:ffff::1'), true);
    assert.equal(g.isAddressAllowed('fd00:2::1'), false);
  });

  it('treats an IPv4-mapped IPv6 CIDR entry as the IPv4 range it covers', () => {
    const g = guard({ allowedDestinations: ['::ffff:192.168.0.0/112'] });
    assert.equal(g.isAddressAllowed('192.168.5.5'), true);
    assert.equal(g.isAddressAllowed('10.0.0.1'), false);
  });

  it('keeps IPv6 ranges to IPv6: ::/0 admits neither IPv4 nor IPv4-mapped addresses', () => {
    // node:net's BlockList alone would match 10.0.0.1 against ::/0 (as ::ffff:10.0.0.1).
    const g = guard({ allowedDestinations: ['::/0'] });
    assert.equal(g.isAddressAllowed('fd00::1'), true);
    assert.equal(g.isAddressAllowed('::1'), true);
    assert.equal(g.isAddressAllowed('10.0.0.1'), false);
    assert.equal(g.isAddressAllowed('::ffff:10.0.0.1'), false);
    const v4 = guard({ allowedDestinations: ['0.0.0.0/0'] });
    assert.equal(v4.isAddressAllowed('10.0.0.1'), true);
    assert.equal(v4.isAddressAllowed('::ffff:a00:1'), true);
    assert.equal(v4.isAddressAllowed('fd00::1'), false);
    assert.equal(v4.isAddressAllowed('::a00:1'), false, 'the deprecated IPv4-compatible form is not a mapped address');
  });

  it('matches a zoned link-local address by its address', () => {
    const g = guard({ allowedDestinations: ['fe80::/10'] });
    assert.equal(g.isAddressAllowed('fe80::1%eth0'), true);
    assert.equal(guard().isAddressAllowed('fe80::1%eth0'), false);
  });

  it('allows any address for an allow-listed hostname, case-insensitively', () => {
    const g = guard({ allowedDestinations: ['Internal.Example'] });
    assert.equal(g.isAddressAllowed('10.0.0.5', 'internal.example'), true);
    assert.equal(g.isAddressAllowed('10.0.0.5', 'INTERNAL.EXAMPLE.'), true);
    assert.equal(g.isAddressAllowed('10.0.0.5', 'other.example'), false);
    assert.equal(g.isAddressAllowed('10.0.0.5'), false);
  });
});

describe('checkUrl', () => {
  const blockedUrls = [
    'http://127.0.0.1/',
    'http://127.1/',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[64:ff9b::127.0.0.1]/',
    'http://0.0.0.0/',
    'http://[::]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1:8080/',
    'https://192.168.0.1/',
    'http://localhost/',
    'http://LOCALHOST./',
    'http://api.localhost:3000/',
  ];
  for (const url of blockedUrls) {
    it(`blocks ${url} without resolving`, async () => {
      await assert.rejects(guard().checkUrl(new URL(url)), DestinationBlockedError);
    });
  }

  it('explains which host is blocked, why, and how to allow it', async () => {
    await assert.rejects(guard().checkUrl(new URL('http://127.1:9/')), (error: unknown) => {
      assert.ok(error instanceof DestinationBlockedError);
      assert.equal(error.code, 'destination_blocked');
      assert.equal(error.host, '127.0.0.1');
      assert.match(error.message, /^127\.0\.0\.1 is a loopback address; /);
      assert.match(error.message, /ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS=true/);
      assert.match(error.message, /ASYNCQUEUE_ALLOWED_DESTINATIONS/);
      return true;
    });
  });

  it('never puts credentials into the message', async () => {
    const g = guard({ resolve: staticResolver({ 'internal.test': ['10.0.0.1'] }) });
    for (const url of ['http://alice:s3cret@127.0.0.1/', 'http://alice:s3cret@internal.test/?token=s3cret']) {
      await assert.rejects(g.checkUrl(new URL(url)), (error: unknown) => {
        assert.ok(error instanceof DestinationBlockedError);
        assert.doesNotMatch(error.message, /alice|s3cret/);
        return true;
      });
    }
  });

  it('allows a public literal address', async () => {
    await guard().checkUrl(new URL(`https://${PUBLIC_V4}/hook`));
    await guard().checkUrl(new URL('https://[2606:4700:4700::1111]/hook'));
  });

  it('blocks a hostname that resolves only to blocked addresses', async () => {
    const g = guard({ resolve: staticResolver({ 'evil.test': ['127.0.0.1', '::1'] }) });
    await assert.rejects(g.checkUrl(new URL('http://evil.test/')), (error: unknown) => {
      assert.ok(error instanceof DestinationBlockedError);
      assert.equal(error.host, 'evil.test');
      assert.match(error.message, /evil\.test resolves only to blocked addresses \(127\.0\.0\.1 is a loopback address\)/);
      return true;
    });
  });

  it('allows a hostname with at least one public address', async () => {
    const g = guard({ resolve: staticResolver({ 'public.test': [PUBLIC_V4], 'mixed.test': ['10.0.0.1', PUBLIC_V4] }) });
    await g.checkUrl(new URL('https://public.test/'));
    await g.checkUrl(new URL('https://mixed.test/'));
  });

  it('does not throw when the name does not resolve (yet)', async () => {
    await guard({ resolve: staticResolver({}) }).checkUrl(new URL('https://not-yet.test/'));
    await guard({ resolve: async () => [] }).checkUrl(new URL('https://empty.test/'));
  });

  it('allowPrivateNetworks lifts the block for literals and names', async () => {
    const g = guard({ allowPrivateNetworks: true });
    for (const url of blockedUrls) await g.checkUrl(new URL(url));
  });

  it('honours hostname, IP and CIDR allow-list entries', async () => {
    const g = guard({
      allowedDestinations: ['internal.test', 'localhost', '127.0.0.1', '10.20.0.0/16'],
      resolve: staticResolver({ 'internal.test': ['10.9.9.9'], 'svc.test': ['10.20.1.1'], 'other.test': ['10.21.0.1'] }),
    });
    await g.checkUrl(new URL('http://internal.test/'));
    await g.checkUrl(new URL('http://INTERNAL.test./'));
    await g.checkUrl(new URL('http://localhost/'));
    await g.checkUrl(new URL('http://127.1/'));
    await g.checkUrl(new URL('http://[::ffff:127.0.0.1]/'));
    await g.checkUrl(new URL('http://10.20.30.40/'));
    await g.checkUrl(new URL('http://svc.test/'));
    await assert.rejects(g.checkUrl(new URL('http://other.test/')), DestinationBlockedError);
    await assert.rejects(g.checkUrl(new URL('http://127.0.0.2/')), DestinationBlockedError);
  });
});

describe('parseAllowedDestinations', () => {
  const VAR = 'ASYNCQUEUE_ALLOWED_DESTINATIONS';

  it('treats unset or blank as empty', () => {
    assert.deepEqual(parseAllowedDestinations(undefined, VAR), []);
    assert.deepEqual(parseAllowedDestinations('  ', VAR), []);
  });

  it('parses hostnames, IPs and CIDR ranges', () => {
    assert.deepEqual(parseAllowedDestinations(' Internal.Example. , 10.0.0.5,10.1.0.0/16, ::1 , fd00::/8,[fe80::1]', VAR), [
      'internal.example',
      '10.0.0.5',
      '10.1.0.0/16',
      '::1',
      'fd00::/8',
      '[fe80::1]',
    ]);
  });

  it('produces entries the guard accepts', () => {
    const entries = parseAllowedDestinations('svc.internal,10.1.0.0/16,::1', VAR);
    const g = guard({ allowedDestinations: entries });
    assert.equal(g.isAddressAllowed('10.1.9.9'), true);
    assert.equal(g.isAddressAllowed('::1'), true);
    assert.equal(g.isAddressAllowed('10.0.0.1', 'SVC.internal'), true);
  });

  const bad: Array<[string, RegExp]> = [
    ['10.0.0.0/99', /10\.0\.0\.0\/99/],
    ['fd00::/129', /fd00::\/129/],
    ['10.0.0.0/', /10\.0\.0\.0\//],
    ['10.0.0/8', /10\.0\.0\/8/],
    ['host.example/24', /host\.example\/24/],
    ['a.example,,b.example', /entry 2 is empty/],
    ['a.example,', /entry 2 is empty/],
    ['bad_host!', /bad_host!/],
    ['host.example:8080', /host\.example:8080/],
    ['*.example.com', /\*\.example\.com/],
    ['127.1', /127\.1/],
    ['2130706433', /2130706433/],
  ];
  for (const [raw, names] of bad) {
    it(`rejects ${JSON.stringify(raw)} naming the variable and the entry`, () => {
      assert.throws(
        () => parseAllowedDestinations(raw, VAR),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.equal(error.variable, VAR);
          assert.match(error.message, new RegExp(`^${VAR}: `));
          assert.match(error.message, names);
          return true;
        },
      );
    });
  }

  it('does not echo URLs, which may carry credentials', () => {
    assert.throws(
      () => parseAllowedDestinations('https://bob:hunter2@hooks.example', VAR),
      (error: unknown) => error instanceof ConfigError && !/hunter2/.test(error.message),
    );
  });

  it('makes the constructor refuse invalid entries too', () => {
    assert.throws(() => guard({ allowedDestinations: ['10.0.0.0/99'] }), ConfigError);
  });
});

describe('createDispatcher', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;
  const agents: Agent[] = [];

  before(async () => {
    server = http.createServer((_req, res) => res.end('reached'));
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function dispatcher(g: DestinationGuard, options?: Agent.Options): Agent {
    const agent = g.createDispatcher(options);
    agents.push(agent);
    return agent;
  }

  async function get(url: string, agent: Agent): Promise<string> {
    const res = await request(url, { dispatcher: agent });
    return res.body.text();
  }

  async function assertNotReached(url: string, agent: Agent): Promise<void> {
    const before = connections;
    await assert.rejects(get(url, agent), (error: unknown) => {
      assert.ok(isBlocked(error), `expected destination_blocked, got ${String(error)}`);
      return true;
    });
    assert.equal(connections, before, 'the server must not see a connection');
  }

  it('refuses a literal loopback IP', async () => {
    await assertNotReached(`http://127.0.0.1:${port}/`, dispatcher(guard()));
  });

  it('refuses literal loopback in other spellings', async () => {
    const agent = dispatcher(guard());
    await assertNotReached(`http://127.1:${port}/`, agent);
    await assertNotReached(`http://[::ffff:127.0.0.1]:${port}/`, agent);
  });

  it('refuses a name that resolves to loopback at connect time', async () => {
    const g = guard({ resolve: staticResolver({ 'evil.test': ['127.0.0.1'] }) });
    await assertNotReached(`http://evil.test:${port}/`, dispatcher(g));
  });

  it('refuses localhost names without resolving them', async () => {
    await assertNotReached(`http://localhost:${port}/`, dispatcher(guard()));
  });

  it('stops DNS rebinding: public at create time, loopback at connect time', async () => {
    let calls = 0;
    const rebinding: Resolver = async () => {
      calls += 1;
      return calls === 1 ? [{ address: PUBLIC_V4, family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
    };
    const g = guard({ resolve: rebinding });
    const url = `http://rebind.test:${port}/`;
    await g.checkUrl(new URL(url));
    await assertNotReached(url, dispatcher(g));
    assert.equal(calls, 2);
  });

  it('reaches loopback when its IP is allow-listed', async () => {
    const agent = dispatcher(guard({ allowedDestinations: ['127.0.0.1'] }));
    assert.equal(await get(`http://127.0.0.1:${port}/`, agent), 'reached');
  });

  it('reaches loopback when private networks are allowed', async () => {
    const g = guard({ allowPrivateNetworks: true, resolve: staticResolver({ 'app.test': ['127.0.0.1'] }) });
    const agent = dispatcher(g);
    assert.equal(await get(`http://127.0.0.1:${port}/`, agent), 'reached');
    assert.equal(await get(`http://app.test:${port}/`, agent), 'reached');
  });

  for (const autoSelectFamily of [true, false]) {
    it(`connects an allow-listed name to loopback (autoSelectFamily: ${autoSelectFamily})`, async () => {
      const g = guard({ allowedDestinations: ['app.test'], resolve: staticResolver({ 'app.test': ['127.0.0.1'] }) });
      const agent = dispatcher(g, { autoSelectFamily });
      assert.equal(await get(`http://app.test:${port}/`, agent), 'reached');
    });

    it(`connects only to an allowed address of a mixed answer (autoSelectFamily: ${autoSelectFamily})`, async () => {
      // 127.0.0.2 is blocked and nothing listens there; reaching the server proves it was skipped.
      const g = guard({
        allowedDestinations: ['127.0.0.1'],
        resolve: staticResolver({ 'mixed.test': ['127.0.0.2', '127.0.0.1'] }),
      });
      const agent = dispatcher(g, { autoSelectFamily });
      assert.equal(await get(`http://mixed.test:${port}/`, agent), 'reached');
    });
  }

  it('refuses to wrap a custom connect function', () => {
    assert.throws(() => guard().createDispatcher({ connect: (_opts, cb) => cb(new Error('x'), null) }), TypeError);
  });
});

describe('createDispatcher to an IPv6 literal', () => {
  let server: http.Server | undefined;
  let port = 0;
  let connections = 0;
  let unavailable: string | undefined;
  const agents: Agent[] = [];

  before(async () => {
    const candidate = http.createServer((_req, res) => res.end('reached over IPv6'));
    candidate.on('connection', () => {
      connections += 1;
    });
    try {
      await new Promise<void>((resolve, reject) => {
        candidate.once('error', reject);
        candidate.listen(0, '::1', resolve);
      });
      server = candidate;
      port = (server.address() as AddressInfo).port;
    } catch (error) {
      unavailable = `IPv6 loopback is unavailable here (${(error as { code?: string }).code ?? String(error)})`;
    }
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
  });

  function dispatcher(g: DestinationGuard): Agent {
    const agent = g.createDispatcher();
    agents.push(agent);
    return agent;
  }

  const url = (): string => `http://[::1]:${port}/`;

  it('reaches a receiver on [::1] when private networks are allowed', async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable);
    const res = await request(url(), { dispatcher: dispatcher(guard({ allowPrivateNetworks: true })) });
    assert.equal(await res.body.text(), 'reached over IPv6');
  });

  it('reaches it when ::1 is allow-listed', async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable);
    const res = await request(url(), { dispatcher: dispatcher(guard({ allowedDestinations: ['::1'] })) });
    assert.equal(await res.body.text(), 'reached over IPv6');
  });

  it('refuses it otherwise, before connecting', async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable);
    const before = connections;
    await assert.rejects(request(url(), { dispatcher: dispatcher(guard()) }), (error: unknown) => {
      assert.ok(isBlocked(error), `expected destination_blocked, got ${String(error)}`);
      return true;
    });
    await assert.rejects(
      request(url(), { dispatcher: dispatcher(guard({ allowedDestinations: ['127.0.0.1'] })) }),
      (error: unknown) => isBlocked(error),
    );
    assert.equal(connections, before, 'the server must not see a connection');
  });
});
