/**
 * Lowering a process's CPU priority (Unix nice), for a worker that shares its host with the API:
 * a task's calls wait in Temporal anyway, while a create answers a user. On a host of its own it
 * changes nothing (the priority only orders this host's runnable threads).
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';

/**
 * Sets this process's nice value to `nice` (0–19), never raising its priority (a process started
 * with a higher nice keeps it). Call it before the process starts threads of its own: on Linux nice
 * is per thread, so every thread that exists now is set, and the ones made later inherit it.
 */
export function lowerProcessPriority(nice: number): void {
  if (nice <= 0) return;
  for (const thread of threadIds()) {
    try {
      if (os.getPriority(thread) < nice) os.setPriority(thread, nice);
    } catch {
      // The thread ended between the listing and now.
    }
  }
}

/** This process's thread ids on Linux (setpriority takes them as pids); elsewhere, the process. */
function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [0];
  }
}
