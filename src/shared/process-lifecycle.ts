/**
 * Boot and shutdown shared by the entry points: configuration errors end the process with the
 * message alone, and SIGINT/SIGTERM/SIGHUP run the shutdown once (a second signal forces the exit).
 */
import { AsyncQueueError, ConfigError } from './errors.js';
import { loadConfig, type Config } from './config.js';

export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`asyncqueue: configuration error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`asyncqueue: ${signal} again, exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`asyncqueue: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  // A closed terminal: Node's default for SIGHUP ends the process at once, without 'exit'
  // handlers, which would leave `npm start`'s dev server (a process group of its own) running.
  process.on('SIGHUP', handle);
}

/** Reports a failed boot in one readable paragraph instead of a stack trace. */
export function exitOnBootFailure(err: unknown): never {
  const message = err instanceof AsyncQueueError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`asyncqueue: failed to start: ${message}\n`);
  process.exit(1);
}
