/** The worker's connection to Temporal: the SDK's native one, from the same settings as the API's. */
import { NativeConnection } from '@temporalio/worker';
import type { GrpcCompression } from '../shared/config.js';
import { connectionOptions, workerCompression, type TemporalTarget } from '../shared/temporal-connection.js';

export async function connectWorkerConnection(
  target: TemporalTarget,
  compression: GrpcCompression | undefined,
): Promise<NativeConnection> {
  const options = connectionOptions(target);
  return NativeConnection.connect({
    ...options,
    grpcCompression: { codec: workerCompression(compression, options.address) },
  });
}
