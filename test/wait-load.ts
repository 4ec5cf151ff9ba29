/**
 * Measures `GET /v1/tasks/{id}?wait=60` with many waiting clients on one API process (README,
 * "Waiting for the outcome"): memory and CPU of the process holding the API (and a worker), the
 * Temporal calls the waits cost, and how fast waiters wake when their tasks end, which also shows
 * whether every long poll is live on the server at once (none held back by an HTTP/2 stream limit).
 *
 *   node --expose-gc dist/test/wait-load.js [clients=1000] [tasks=1000]
 *
 * It starts its own Temporal dev server (through the test harness); the clients run in a child
 * process so that their cost is not counted.
 */
import { fork } from 'node:child_process';
import { request, Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startHarness, stopOwnServer } from './support/harness.js';

const WAIT_SECONDS = 60;
const STEADY_MS = 20_000;

async function clients(baseUrl: string, ids: string[], count: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  let answered = 0;
  const started = new Map<string, number[]>();
  await Promise.all(
    Array.from({ length: count }, (_unused, index) => {
      const id = ids[index % ids.length]!;
      return new Promise<void>((resolve) => {
        const at = Date.now();
        request(`${baseUrl}/v1/tasks/${id}?wait=${WAIT_SECONDS}`, { agent }, (response) => {
          response.resume();
          response.on('end', () => {
            answered++;
            const list = started.get(id) ?? [];
            list.push(Date.now() - at);
            started.set(id, list);
            process.send?.({ answered, id, status: response.statusCode });
            resolve();
          });
        })
          .on('error', () => resolve())
          .end();
      });
    }),
  );
}

async function main(): Promise<void> {
  const clientCount = Number(process.argv[2] ?? 1000);
  const taskCount = Number(process.argv[3] ?? 1000);
  const harness = await startHarness({ env: { ASYNCQUEUE_MAX_WAIT_POLLS: String(Math.max(taskCount, 1)) } });
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const ids: string[] = [];
    for (let i = 0; i < taskCount; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, taskCount - i) }, () =>
          harness.createTask({ callbackUrl: 'http://127.0.0.1:9/never', delay: 3600 }),
        ),
      );
      ids.push(...batch);
    }
    log(`${ids.length} delayed tasks created`);
    const stats = () => harness.app.tasks.waitStats();
    global.gc?.();
    const before = process.memoryUsage();
    const child = fork(fileURLToPath(import.meta.url), ['--clients', harness.baseUrl, String(clientCount), ...ids], {
      stdio: 'inherit',
    });
    const answers = new Map<string, number>();
    child.on('message', (message: { id: string }) => answers.set(message.id, Date.now()));
    const registerStart = Date.now();
    while (stats().waiters < clientCount) {
      if (Date.now() - registerStart > 120_000) throw new Error(`only ${stats().waiters} waiters registered`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    log(`${clientCount} waiters registered in ${Date.now() - registerStart} ms: ${JSON.stringify(stats())}`);
    const calls0 = stats().historyCalls;
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    await new Promise((resolve) => setTimeout(resolve, STEADY_MS));
    const cpu = process.cpuUsage(cpu0);
    global.gc?.();
    const during = process.memoryUsage();
    const seconds = (Date.now() - t0) / 1000;
    log(
      `steady ${seconds.toFixed(1)} s: CPU ${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(1)} % of one core, ` +
        `history calls ${stats().historyCalls - calls0} (${((stats().historyCalls - calls0) / seconds).toFixed(1)}/s), ` +
        `RSS +${((during.rss - before.rss) / 2 ** 20).toFixed(1)} MiB, heap +${((during.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)} MiB ` +
        `(${(((during.heapUsed - before.heapUsed) / clientCount / 1024) | 0) + ' KiB'}/waiter heap), ${JSON.stringify(stats())}`,
    );
    // Wake-up: cancel 50 tasks spread over the set; every poll must be live on the server for all to wake fast.
    const sample = ids.filter((_id, index) => index % Math.max(1, Math.floor(ids.length / 50)) === 0).slice(0, 50);
    const cancelAt = new Map<string, number>();
    await Promise.all(
      sample.map(async (id) => {
        cancelAt.set(id, Date.now());
        await harness.api('POST', `/v1/tasks/${id}/cancel`);
      }),
    );
    const deadline = Date.now() + 30_000;
    while (sample.some((id) => !answers.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const latencies = sample.map((id) => (answers.get(id) ?? Number.NaN) - cancelAt.get(id)!).sort((a, b) => a - b);
    log(
      `wake-up after cancel (50 tasks): p50 ${latencies[24]} ms, max ${latencies[latencies.length - 1]} ms, ` +
        `${latencies.filter(Number.isNaN).length} never woke`,
    );
    child.kill();
  } finally {
    // The delayed tasks: the dev server goes with them.
    await harness.close();
    await stopOwnServer();
  }
}

if (process.argv[2] === '--clients') {
  const [, , , baseUrl, count, ...ids] = process.argv;
  void clients(baseUrl!, ids, Number(count));
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
