/** Tearing down what a tool started: one step at a time, none allowed to stop the others. */
import { within } from './timing.js';

/** Runs one step, bounded (20 s unless told); a step that fails or hangs is logged and the teardown goes on. */
export async function teardownStep(
  log: (message: string) => void,
  what: string,
  action: () => Promise<unknown>,
  timeoutMs = 20_000,
): Promise<void> {
  try {
    if (
      (await within(
        action().then(() => true),
        timeoutMs,
      )) === undefined
    )
      log(`cleanup: ${what} did not finish in ${timeoutMs / 1000} s`);
  } catch (err) {
    log(`cleanup: ${what} failed: ${String(err)}`);
  }
}
