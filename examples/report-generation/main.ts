/**
 * `npm run example`: the report app on http://127.0.0.1:4000, against `npm start` on :3000.
 * Reads the signing secret from AsyncQueue's data folder unless ASYNCQUEUE_SIGNING_SECRET is set.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createReportApp } from './app.js';

async function main(): Promise<void> {
  const port = Number(process.env.EXAMPLE_PORT ?? 4000);
  const secretFile = path.resolve(process.env.ASYNCQUEUE_DATA_DIR ?? 'data', 'signing-secret');
  const signingSecret =
    process.env.ASYNCQUEUE_SIGNING_SECRET?.split(',')[0] ??
    (
      await readFile(secretFile, 'utf8').catch(() => {
        throw new Error(
          `no signing secret: start AsyncQueue first (npm start writes ${secretFile}) or set ASYNCQUEUE_SIGNING_SECRET`,
        );
      })
    ).trim();
  const app = await createReportApp({
    asyncQueueUrl: process.env.ASYNCQUEUE_URL ?? 'http://127.0.0.1:3000',
    ...(process.env.ASYNCQUEUE_API_KEY ? { asyncQueueApiKey: process.env.ASYNCQUEUE_API_KEY } : {}),
    signingSecret,
    publicUrl: `http://127.0.0.1:${port}`,
  });
  await app.listen({ port, host: '127.0.0.1' });
  process.stdout.write(`Report example on http://127.0.0.1:${port} — open it and press "Generate report".\n`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`example: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
