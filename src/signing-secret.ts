/**
 * The keys that sign outgoing requests: from ASYNCQUEUE_SIGNING_SECRET, or generated once and
 * kept in the data folder so the receivers' copy stays valid across restarts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SigningKey } from '../activities/webhook-signature.js';
import { ConfigError } from './errors.js';

export interface SigningSecrets {
  keys: SigningKey[];
  /** Where the secret came from: the variable, or the file it is kept in. */
  source: string;
}

export const SIGNING_SECRET_FILE = 'signing-secret';

export async function loadSigningSecrets(secrets: string[] | undefined, dataDir: string): Promise<SigningSecrets> {
  if (secrets !== undefined) {
    return { keys: secrets.map((secret) => parseKey(secret, 'ASYNCQUEUE_SIGNING_SECRET')), source: 'ASYNCQUEUE_SIGNING_SECRET' };
  }
  const file = path.join(dataDir, SIGNING_SECRET_FILE);
  let secret: string;
  try {
    secret = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    secret = `whsec_${randomBytes(32).toString('base64')}`;
    await mkdir(dataDir, { recursive: true });
    // `wx` fails if another process created the file first; then that process's secret wins.
    try {
      await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    } catch (writeErr) {
      if ((writeErr as NodeJS.ErrnoException).code !== 'EEXIST') throw writeErr;
      secret = (await readFile(file, 'utf8')).trim();
    }
  }
  return { keys: [parseKey(secret, file)], source: file };
}

function parseKey(secret: string, origin: string): SigningKey {
  const key = SigningKey.parse(secret);
  if (key === undefined) throw new ConfigError(origin, 'not a whsec_ secret of at least 24 random bytes');
  return key;
}
