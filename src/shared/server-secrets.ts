/**
 * The server's two secrets, each from its variable or generated once and kept in the data folder
 * (so it stays the same across restarts of processes that share that folder):
 * - the signing secret (`ASYNCQUEUE_SIGNING_SECRET`), which signs outgoing requests and which
 *   every receiver holds a copy of;
 * - the task-token secret (`ASYNCQUEUE_TASK_TOKEN_SECRET`), from which task tokens are derived,
 *   which no one but AsyncQueue's own processes holds. API and workers must share both.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SigningKey } from '../../activities/webhook-signature.js';
import { TaskTokenKeys } from '../../activities/task-token.js';
import { ConfigError } from './errors.js';

export interface SigningSecrets {
  keys: SigningKey[];
  /** Where the secret came from: the variable, or the file it is kept in. */
  source: string;
}

export interface TaskTokenSecrets {
  keys: TaskTokenKeys;
  source: string;
}

export const SIGNING_SECRET_FILE = 'signing-secret';
export const TASK_TOKEN_SECRET_FILE = 'task-token-secret';

export async function loadSigningSecrets(secrets: string[] | undefined, dataDir: string): Promise<SigningSecrets> {
  if (secrets !== undefined) {
    return { keys: secrets.map((secret) => parseKey(secret, 'ASYNCQUEUE_SIGNING_SECRET')), source: 'ASYNCQUEUE_SIGNING_SECRET' };
  }
  const file = path.join(dataDir, SIGNING_SECRET_FILE);
  const secret = await readOrCreate(file, () => `whsec_${randomBytes(32).toString('base64')}`);
  return { keys: [parseKey(secret, file)], source: file };
}

export async function loadTaskTokenSecrets(secrets: string[] | undefined, dataDir: string): Promise<TaskTokenSecrets> {
  const variable = 'ASYNCQUEUE_TASK_TOKEN_SECRET';
  const file = path.join(dataDir, TASK_TOKEN_SECRET_FILE);
  const values = secrets ?? [await readOrCreate(file, () => randomBytes(32).toString('base64url'))];
  const keys = TaskTokenKeys.fromSecrets(values);
  if (keys === undefined)
    throw new ConfigError(secrets !== undefined ? variable : file, 'each secret must be at least 32 characters');
  return { keys, source: secrets !== undefined ? variable : file };
}

/** The secret kept in `file`, created with `generate()` when there is none yet. */
async function readOrCreate(file: string, generate: () => string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = generate();
  await mkdir(path.dirname(file), { recursive: true });
  // `wx` fails if another process created the file first; then that process's secret wins.
  try {
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await readFile(file, 'utf8')).trim();
  }
}

function parseKey(secret: string, origin: string): SigningKey {
  const key = SigningKey.parse(secret);
  if (key === undefined) throw new ConfigError(origin, 'not a whsec_ secret of at least 24 random bytes');
  return key;
}
