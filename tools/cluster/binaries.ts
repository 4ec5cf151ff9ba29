/**
 * The Temporal server, its SQL tool, its PostgreSQL schemas and the Web UI server, from
 * scripts/temporal-server.sh, which builds the missing ones into a cache outside the repository.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ClusterError, run } from './processes.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/temporal-server.sh', import.meta.url));

export interface ServerBinaries {
  server: string;
  sql: string;
  /** The server's schema/postgresql/v12 folder. */
  schema: string;
  version: string;
}

export async function serverBinaries(): Promise<ServerBinaries> {
  const found = parse(await script(['server', 'sql', 'schema']));
  const { server, sql, schema } = found;
  if (server === undefined || sql === undefined || schema === undefined) {
    throw new ClusterError(`scripts/temporal-server.sh named no server, sql or schema: ${JSON.stringify(found)}`);
  }
  // "temporal version 1.29.1"
  const version = (await run('server --version', server, ['--version'])).trim().split(/\s+/).at(-1) ?? 'unknown';
  return { server, sql, schema, version };
}

/** The UI server's path, or why there is none (the cluster runs without it then). */
export async function uiBinary(): Promise<{ path: string } | { reason: string }> {
  try {
    const { ui } = parse(await script(['ui']));
    return ui === undefined ? { reason: 'scripts/temporal-server.sh named no UI server' } : { path: ui };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

/** Runs the script with its progress (a first build takes minutes) going straight to our stderr. */
async function script(args: string[]): Promise<string> {
  const child = spawn('bash', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0)
    throw new ClusterError(`scripts/temporal-server.sh ${args.join(' ')} failed (exit code ${code}); its messages are above`);
  return stdout;
}

/** `name=path` lines; the script's progress lines (on stderr, `temporal-server: …`) are skipped. */
function parse(output: string): Record<string, string | undefined> {
  const found: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const match = /^(server|sql|schema|ui)=(.+)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) found[match[1]] = match[2];
  }
  return found;
}
