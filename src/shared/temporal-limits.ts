/**
 * Temporal's default limits that AsyncQueue has to stay inside (a cluster may raise them; these are
 * what the dev server and a default cluster enforce).
 *
 * A single payload (a workflow input, a signal, an activity result) may be at most 2 MiB
 * (`limit.blobSize.error`). A body can grow when encoded: `1e20` is 4 bytes in a request and 21
 * once stored, and a response of invalid UTF-8 becomes three bytes per byte; so sizes are checked
 * on the encoded form.
 */
export const TEMPORAL_PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024;
