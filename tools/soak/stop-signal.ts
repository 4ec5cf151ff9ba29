/** Set on Ctrl-C or at the end: loops stop starting new work and retries stop retrying. */

let stopping = false;

export function isStopping(): boolean {
  return stopping;
}

export function requestStop(): void {
  stopping = true;
}
