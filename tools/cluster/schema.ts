/**
 * Temporal's two PostgreSQL databases, created and migrated with the server's own SQL tool exactly
 * as an operator would: `create-database`, `setup-schema -v 0.0` (version tables only), then
 * `update-schema` to the newest version shipped with the server. Every step is idempotent, so it
 * runs at every start: a restart reuses the databases, and a newer server migrates them.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { run } from './processes.js';

export interface SchemaOptions {
  sqlTool: string;
  /** The server's schema/postgresql/v12 folder. */
  schemaDir: string;
  port: number;
  user: string;
  password: string;
  log: (line: string) => void;
}

export const DATABASES = [
  { name: 'temporal', schema: 'temporal' },
  { name: 'temporal_visibility', schema: 'visibility' },
] as const;

/** Creates and migrates both databases; the schema version each ends on. */
export async function migrateDatabases(options: SchemaOptions): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const database of DATABASES) {
    const sql = (what: string, args: string[]) =>
      run(
        `temporal-sql-tool ${what} (${database.name})`,
        options.sqlTool,
        [
          '--plugin',
          'postgres12',
          '--endpoint',
          '127.0.0.1',
          '--port',
          String(options.port),
          '--user',
          options.user,
          '--database',
          database.name,
          ...args,
        ],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SQL_PASSWORD: options.password } },
      );

    await sql('create-database', ['create-database']); // succeeds when it exists already
    await sql('setup-schema', ['setup-schema', '-v', '0.0']);
    const versioned = path.join(options.schemaDir, database.schema, 'versioned');
    await sql('update-schema', ['update-schema', '-d', versioned]);
    versions[database.name] = await newestVersion(versioned);
  }
  return versions;
}

/** update-schema goes to the newest version folder (v1.18 and the like) it is given. */
async function newestVersion(versioned: string): Promise<string> {
  const numbers = (v: string) => v.slice(1).split('.').map(Number);
  const sorted = (await readdir(versioned))
    .filter((name) => /^v\d+\.\d+$/.test(name))
    .sort((a, b) => {
      const [a1 = 0, a2 = 0] = numbers(a);
      const [b1 = 0, b2 = 0] = numbers(b);
      return a1 - b1 || a2 - b2;
    });
  return sorted.at(-1) ?? 'unknown';
}
