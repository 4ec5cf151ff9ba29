/**
 * The OpenAPI document tells the truth: Schemathesis (pinned in scripts/schemathesis.sh) reads
 * `/openapi.json` of a real API, with a worker and a Temporal server behind it, and sends what the
 * document allows and what it forbids. Every answer must be documented (status, content type,
 * body schema, headers), never a 5xx, never slower than 10 s; what the document allows must be
 * accepted and what it forbids refused; unauthenticated requests are 401s; a method a path does
 * not list is a 405 with `Allow`.
 *
 * Nothing leaves the machine. The harness allows private networks, which would let generated
 * callback URLs be called wherever they point, and the generator makes up public host names
 * (`https://x1k.com`). Refusing those at create (400 destination_blocked) would make every valid
 * create a "valid data rejected" failure and leave the worker nothing to do, so instead the guard
 * below resolves every name to 127.0.0.1 without asking DNS, at create and when the worker
 * connects: the create is accepted as a real deployment accepts a public name, and the attempt
 * meets a closed loopback port. A literal address off loopback (which the generator does not make)
 * is refused at create, so no task can hold one.
 *
 * Run it alone: `npx tsc -p tsconfig.json && node dist/test/run-tests.js dist/test/openapi-fuzz.test.js`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DestinationGuard } from '../activities/destination-guard.js';
import { DestinationBlockedError } from '../src/shared/errors.js';
import { terminateRunning } from './support/cleanup.js';
import { startHarness, stopOwnServer, temporalAddress, type Harness } from './support/harness.js';
import { createNamespace } from './support/namespace.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const API_KEY = 'openapi-fuzz-key-0123456789';
/** Fixed, so a failure replays; ASYNCQUEUE_FUZZ_SEED explores other cases. */
const SEED = Number(process.env.ASYNCQUEUE_FUZZ_SEED ?? 20_261_202);
/**
 * Cases per operation and phase. ASYNCQUEUE_FUZZ_EXAMPLES asks for a longer run (the seed stays),
 * e.g. before a release.
 */
const MAX_EXAMPLES = Number(process.env.ASYNCQUEUE_FUZZ_EXAMPLES ?? 20);
/**
 * A hung run is killed after this. Runs take 5.5–6 minutes on the loaded 2-core CI machine (the
 * cluster's the slower), most of it the coverage phase; the paged key and schedule lists' new
 * parameters pushed the cluster's run past the 6 minutes this was, so it has room now.
 */
const RUN_TIMEOUT_MS = 10 * 60_000;

/**
 * `--checks all`, less the ones with nothing to judge here:
 * - use_after_free: no operation deletes anything (tasks end; they are never removed);
 * - object_level_authorization: one tenant: every API key sees every task, by design, so there
 *   is no other caller's object to be refused.
 */
const EXCLUDED_CHECKS = ['use_after_free', 'object_level_authorization'];

/** Every host name is 127.0.0.1; a literal address must be a loopback one. */
class LoopbackOnlyGuard extends DestinationGuard {
  constructor() {
    super({
      allowPrivateNetworks: false,
      allowedDestinations: ['127.0.0.0/8', '::1'],
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
    });
  }

  override async checkUrl(url: URL): Promise<void> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (net.isIP(host) !== 0 && !this.isAddressAllowed(host)) {
      throw new DestinationBlockedError(host, `${host} is off loopback, where this test sends nothing`);
    }
    return super.checkUrl(url);
  }
}

let harness: Harness;
let workDir: string;

before(async () => {
  // Its own namespace: Schemathesis cancels (and reads) the tasks it finds listed, which in the
  // shared namespace are other files' (the first CI run saw one of them end cancelled).
  const namespace = await createNamespace(await temporalAddress(), 'fuzz');
  harness = await startHarness({
    guard: new LoopbackOnlyGuard(),
    // No worker: the run judges the API's answers, and a callback it made could reach another
    // test file's live receiver (Schemathesis reuses URLs it read from the namespace-wide list;
    // every name resolves to 127.0.0.1), which the cluster run caught. Reads then use what the
    // server stores, after a short query timeout.
    withoutWorker: true,
    env: {
      TEMPORAL_NAMESPACE: namespace,
      ASYNCQUEUE_QUERY_TIMEOUT: '0.2',
      ASYNCQUEUE_API_KEYS: API_KEY,
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'false',
      // 429s would only cut the run short; the limiter is tested in overload.test.ts.
      ASYNCQUEUE_RATE_LIMIT: '0',
    },
  });
  // Schemathesis writes its reports and example database where it runs: not in the repository.
  workDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-schemathesis-'));
});

after(async () => {
  // Schedules the run created would go on starting tasks in the namespace.
  if (harness !== undefined) {
    for await (const schedule of harness.client.schedule.list()) {
      await harness.client.schedule
        .getHandle(schedule.scheduleId)
        .delete()
        .catch(() => undefined);
    }
  }
  if (harness !== undefined) await terminateRunning(harness, 'fuzz run over');
  await harness?.close();
  await stopOwnServer();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  output: string;
  seconds: number;
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (performance.now() - started) / 1000 });
    });
  });
}

describe('the OpenAPI document', () => {
  it('is what the server does, as Schemathesis finds', async (t) => {
    const install = await run('bash', [path.join(ROOT, 'scripts/schemathesis.sh')]);
    assert.equal(install.code, 0, `installing schemathesis failed:\n${install.output}`);
    const schemathesis = install.output.trim().split('\n').at(-1)!;

    const result = await run(
      schemathesis,
      [
        '--config-file',
        path.join(ROOT, 'test/support/schemathesis.toml'),
        'run',
        `${harness.baseUrl}/openapi.json`,
        '--checks',
        'all',
        '--exclude-checks',
        EXCLUDED_CHECKS.join(','),
        '--seed',
        String(SEED),
        '--max-examples',
        String(MAX_EXAMPLES),
        // One worker: the API, the worker and Temporal share the two cores with it. Response time
        // limits are per operation, in the config file.
        '--workers',
        '1',
        '--request-timeout',
        '30',
        '--header',
        `Authorization: Bearer ${API_KEY}`,
        '--generation-database',
        'none',
        '--no-color',
      ],
      { cwd: workDir, env: { SCHEMATHESIS_HOOKS: path.join(ROOT, 'test/support/schemathesis-hooks.py') } },
    );
    const summary = /(\d+) generated/.exec(result.output)?.[0] ?? 'no count';
    t.diagnostic(`schemathesis: seed ${SEED}, ${summary}, ${result.seconds.toFixed(1)} s`);
    assert.equal(result.code, 0, `schemathesis found the server and its document at odds:\n${result.output}`);
  });

  it('does not hold a create for a DNS lookup that hangs', async () => {
    const guard = new DestinationGuard({
      allowPrivateNetworks: false,
      allowedDestinations: [],
      resolve: () => new Promise(() => {}),
      checkTimeoutMs: 200,
    });
    const started = performance.now();
    // A name that does not resolve in time may exist later: accepted, vetted again at connect time.
    await guard.checkUrl(new URL('https://slow-dns.example.com/run'));
    assert.ok(performance.now() - started < 1_000, 'checkUrl waited past its timeout');
  });
});
