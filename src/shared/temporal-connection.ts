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
import { isLoopbackHost, type GrpcCompression } from './config.js';

export interface TemporalTarget {
  /** `host:port` of the embedded dev server; undefined means "what the environment says". */
  embeddedAddress?: string;
}

export function connectionOptions(target: TemporalTarget): NativeConnectionOptions {
  if (target.embeddedAddress !== undefined) return { address: target.embeddedAddress };
  return loadClientConnectConfig().connectionOptions;
}

/**
 * The worker connection's gRPC compression: `setting` when given, else none when Temporal is on
 * this machine and gzip (the SDK's default) when it is not. The SDK compresses its requests and
 * asks for compressed answers, which the server then spends CPU on: profiled on the dev server
 * (docs/performance.md, 2026-12-05 night), gzip was 2.3–3.2 % of the engine's CPU, for bytes that
 * never left the machine. Across a network it saves bandwidth, so it stays on there unless set.
 */
export function workerCompression(setting: GrpcCompression | undefined, address: string | undefined): GrpcCompression {
  if (setting !== undefined) return setting;
  // No address: the SDK connects to its default, localhost:7233.
  return isLoopbackHost(hostOf(address ?? 'localhost')) ? 'none' : 'gzip';
}

/** The host of `host:port` or `[ipv6]:port` (a bare host as it is). */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed !== null) return bracketed[1]!;
  const colon = address.lastIndexOf(':');
  // More than one colon and no brackets: a bare IPv6 address.
  if (colon === -1 || address.indexOf(':') !== colon) return address;
  return address.slice(0, colon);
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
