/**
 * How this process reaches Temporal. Standard Temporal settings (TLS, API key, profiles in a
 * config file, `TEMPORAL_*` variables) come from @temporalio/envconfig, so Temporal Cloud and
 * self-hosted clusters work without settings of our own; an embedded dev server overrides the
 * address and drops TLS.
 */
import { Connection } from '@temporalio/client';
// Types only: the API must not load the worker's native core.
import type { NativeConnectionOptions } from '@temporalio/worker';
import { loadClientConnectConfig } from '@temporalio/envconfig';

export interface TemporalTarget {
  /** `host:port` of the embedded dev server; undefined means "what the environment says". */
  embeddedAddress?: string;
}

export function connectionOptions(target: TemporalTarget): NativeConnectionOptions {
  if (target.embeddedAddress !== undefined) return { address: target.embeddedAddress };
  return loadClientConnectConfig().connectionOptions;
}

/**
 * A client connection that does not need Temporal to be up yet: the API starts, answers 503 and
 * reports not-ready while Temporal is away, and recovers by itself when it returns.
 */
export function lazyClientConnection(target: TemporalTarget): Connection {
  const options = connectionOptions(target);
  return Connection.lazy({
    address: options.address,
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ...(options.apiKey !== undefined ? { apiKey: options.apiKey as string } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
  });
}
