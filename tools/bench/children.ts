/** The API and worker child processes of the AsyncQueue phase: readiness, output, stopping. */
import type { Started } from '../../src/dev/entry-points.js';
import { sleep, within } from '../shared/timing.js';

/** SIGTERM (the graceful path the product promises), SIGKILL after 10 s. */
export async function stopChild(started: Started | undefined): Promise<void> {
  if (started === undefined) return;
  if (started.child.exitCode !== null || started.child.signalCode !== null) return;
  const exited = await within(started.stop('SIGTERM'), 10_000);
  if (exited === undefined) {
    started.child.kill('SIGKILL');
    await within(started.exited, 5_000);
  }
}

/** Until /readyz answers 200 (Temporal reachable), at most 60 s; fails at once when a child dies. */
export async function waitForApi(baseUrl: string, children: Started[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.child.exitCode !== null) throw new Error(`a process exited during start-up:\n${child.output().slice(-2000)}`);
    }
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.text();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`the API at ${baseUrl} was not ready within 60 s`);
}

export interface OutputSummary {
  warnLines: number;
  errorLines: number;
  tail: string;
}

/** Counts a child's warn and error lines (pino levels 40, 50/60, or unstructured errors) for the report. */
export function outputSummary(started: Started | undefined): OutputSummary {
  const output = started?.output() ?? '';
  const lines = output.split('\n').filter((line) => line.trim() !== '');
  return {
    warnLines: lines.filter((line) => /"level":40/.test(line)).length,
    errorLines: lines.filter((line) => /"level":(50|60)/.test(line) || (/Error|error:/.test(line) && !/"level":/.test(line)))
      .length,
    tail: output.slice(-3000),
  };
}
