/** The worker's connection to Temporal: the SDK's native one, from the same settings as the API's. */
import { NativeConnection } from '@temporalio/worker';
import { connectionOptions, type TemporalTarget } from '../shared/temporal-connection.js';

export async function connectWorkerConnection(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(target));
}
