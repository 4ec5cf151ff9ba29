/**
 * The Temporal Web UI for the cluster: the `ui-server` release that `temporal server start-dev`
 * embeds, built by scripts/temporal-server.sh, on loopback only (it has no login and can
 * terminate workflows). Optional: when it cannot be built, the cluster runs without it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ManagedProcess, waitFor } from './processes.js';

export interface UiOptions {
  uiBin: string;
  configDir: string;
  logFile: string;
  ip: string;
  port: number;
  frontendAddress: string;
  namespace: string;
  signal?: AbortSignal | undefined;
}

export async function startUi(options: UiOptions): Promise<{ process: ManagedProcess; url: string }> {
  await mkdir(options.configDir, { recursive: true });
  const url = `http://${options.ip}:${options.port}`;
  await writeFile(
    path.join(options.configDir, 'asyncqueue.yaml'),
    [
      `temporalGrpcAddress: ${JSON.stringify(options.frontendAddress)}`,
      `host: ${JSON.stringify(options.ip)}`,
      `port: ${options.port}`,
      'enableUi: true',
      `defaultNamespace: ${JSON.stringify(options.namespace)}`,
      'notifyOnNewVersion: false',
      'cors:',
      `  allowOrigins: [${JSON.stringify(url)}]`,
      '',
    ].join('\n'),
  );
  const process_ = await ManagedProcess.start({
    name: 'Temporal UI',
    command: options.uiBin,
    args: ['--root', '/', '--config', options.configDir, '--env', 'asyncqueue', 'start'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' },
    logFile: options.logFile,
  });
  try {
    await waitFor(
      `the Temporal UI did not answer on ${url}`,
      async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok,
      {
        timeoutMs: 30_000,
        alive: [process_],
        signal: options.signal,
      },
    );
  } catch (err) {
    await process_.stop();
    throw err;
  }
  return { process: process_, url };
}
