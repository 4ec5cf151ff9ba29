/**
 * Whether a process with this pid is still there (signal 0 checks without sending anything). A
 * process of another user answers `EPERM`: it is there, only not ours to signal (the cluster's
 * PostgreSQL runs as `postgres`; a caller not root must not take it for stopped).
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
