/** `npm run api`: the API alone, for deployments that run API and workers as separate processes. */
import { buildApp } from './app.js';
import { exitOnBootFailure, loadConfigOrExit, onShutdownSignal } from '../shared/process-lifecycle.js';
import { ensureSearchAttributes, SearchAttributesMissingError } from '../shared/search-attributes.js';
import { lazyClientConnection } from '../shared/temporal-connection.js';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  if (config.temporalAddress === undefined) {
    throw new Error('TEMPORAL_ADDRESS is required for `npm run api` (use `npm start` for the embedded dev server)');
  }
  if (config.taskTokenSecrets === undefined) {
    process.stderr.write(
      'asyncqueue: ASYNCQUEUE_TASK_TOKEN_SECRET is unset; using the secret kept in the data folder. The API checks the ' +
        'task tokens workers issue: set ASYNCQUEUE_TASK_TOKEN_SECRET to the same value for both unless they share that folder.\n',
    );
  }
  const app = await buildApp({ config, target: {} });
  const connection = lazyClientConnection({});
  try {
    await ensureSearchAttributes(connection, config.temporalNamespace);
  } catch (err) {
    if (err instanceof SearchAttributesMissingError) throw err;
    // Temporal is not reachable yet: start anyway, answer 503 and report not-ready until it is.
    app.log.warn({ err }, 'could not check search attributes; Temporal is not reachable yet');
  } finally {
    await connection.close();
  }
  const url = await app.listen({ port: config.port, host: config.host });
  app.log.info({ url }, 'AsyncQueue API listening');
  onShutdownSignal(async (signal) => {
    app.log.info({ signal }, 'shutting down');
    await app.close();
  });
}

main().catch(exitOnBootFailure);
