/**
 * How the benchmark and the soak run as programs: Ctrl-C (or SIGTERM) tears everything down before
 * exiting, a second one exits at once, and whatever the end — finished, failed or interrupted — the
 * same cleanup runs before the exit code is set, so no child process or server outlives the tool.
 */

export interface ToolRun {
  /** Names the tool in the line logged when it fails ("bench aborted: …"). */
  name: string;
  main(): Promise<number>;
  /** Idempotent: an interrupt and the normal end may both call it. */
  cleanup(): Promise<void>;
  log(message: string): void;
  /** What the interrupt stops, for its log line. */
  interruptNote: string;
  /** Runs after the cleanup of a run that finished. */
  finished?(): void;
}

export function runTool(run: ToolRun): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      run.log(`${signal}: ${run.interruptNote} (again to exit at once)`);
      void run.cleanup().finally(() => process.exit(130));
    });
  }

  run
    .main()
    .then(async (code) => {
      await run.cleanup();
      run.finished?.();
      process.exit(code);
    })
    .catch(async (err: unknown) => {
      run.log(`${run.name} aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await run.cleanup();
      process.exit(2);
    });
}
