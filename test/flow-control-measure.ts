/**
 * `node dist/test/flow-control-measure.js`: flow control's two figures on the in-process stack (a
 * dev server, one worker, one API), for the README's Performance section.
 * 1. Create → first callback with a free slot, against a task without a key (p50, p90).
 * 2. One key's throughput at parallelism 20 with 200 ms callbacks (expected 100 attempts/s):
 *    200 tasks wait on a paused key, then the resume drains them.
 */
import { randomUUID } from 'node:crypto';
import { Receiver } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

async function main(): Promise<void> {
  const samples = Number(process.env.SAMPLES ?? 40);
  const tasks = Number(process.env.TASKS ?? 200);
  const harness = await startHarness();
  const receiver = await Receiver.start();
  try {
    const key = `measure-${randomUUID().slice(0, 8)}`;
    const latency = { none: [] as number[], key: [] as number[] };
    for (let i = 0; i < samples * 2 + 4; i++) {
      const kind = i % 2 === 0 ? 'none' : 'key';
      const path = `/latency-${i}`;
      const sentAt = Date.now();
      await harness.createTask({
        callbackUrl: receiver.url(path),
        ...(kind === 'key' ? { flowControl: { key, parallelism: 100 } } : {}),
      });
      const [call] = await receiver.waitFor(path, 1, 30_000);
      // The first two of each kind warm up (bundle caches, the limiter's start).
      if (i >= 4) latency[kind].push(call!.receivedAt - sentAt);
    }
    const none50 = percentile(latency.none, 50);
    const key50 = percentile(latency.key, 50);
    process.stdout.write(
      `create → first callback, ${samples} each: no key p50 ${none50} ms p90 ${percentile(latency.none, 90)} ms; ` +
        `free slot p50 ${key50} ms p90 ${percentile(latency.key, 90)} ms; overhead p50 ${key50 - none50} ms\n`,
    );

    const busyKey = `throughput-${randomUUID().slice(0, 8)}`;
    let current = 0;
    let peak = 0;
    receiver.always('/throughput', async (_received, response) => {
      current++;
      peak = Math.max(peak, current);
      await new Promise((resolve) => setTimeout(resolve, 200));
      current--;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
    await harness.api('PUT', `/v1/flow-control/${busyKey}`, { parallelism: 20 });
    await harness.api('POST', `/v1/flow-control/${busyKey}/pause`);
    for (let i = 0; i < tasks; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, tasks - i) }, () =>
          harness.createTask({ callbackUrl: receiver.url('/throughput'), flowControl: { key: busyKey, parallelism: 20 } }),
        ),
      );
    }
    await eventually(
      async () => {
        const view = (await harness.api('GET', `/v1/flow-control/${busyKey}`)).body;
        return view.waiting === tasks ? true : undefined;
      },
      { timeoutMs: 120_000, what: 'every task waiting' },
    );
    const resumedAt = Date.now();
    await harness.api('POST', `/v1/flow-control/${busyKey}/resume`);
    await receiver.waitFor('/throughput', tasks, 300_000);
    const lastStart = Math.max(...receiver.to('/throughput').map((call) => call.receivedAt));
    const seconds = (lastStart + 200 - resumedAt) / 1000;
    process.stdout.write(
      `one key, parallelism 20, 200 ms callbacks, ${tasks} tasks: ${seconds.toFixed(2)} s from resume to the last answer, ` +
        `${(tasks / seconds).toFixed(1)} attempts/s (expected 100/s), peak in flight ${peak}\n`,
    );
  } finally {
    await terminateRunning(harness);
    await harness.close();
    await receiver.close();
    await stopOwnServer();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
