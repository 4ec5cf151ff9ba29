/**
 * The tools' liveness probe (tools/shared/process-exists.ts), as a user who may not signal the
 * process it asks about: the cluster's PostgreSQL runs as `postgres`, and a `stopAll` run by
 * another user must not take it for stopped. Needs root to run the probe as `nobody`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { processExists } from '../tools/shared/process-exists.js';

const NOBODY = 65534;
const probe = fileURLToPath(new URL('../tools/shared/process-exists.js', import.meta.url));

describe('process liveness probe', () => {
  it(
    'says a running process of another user is there, and a process that exited is not',
    { skip: skipUnlessRoot() },
    async () => {
      // This process (root) runs on; `nobody` may not signal it.
      const folder = mkdtempSync(path.join(tmpdir(), 'aq-probe-'));
      try {
        chmodSync(folder, 0o755);
        const copy = path.join(folder, 'process-exists.mjs');
        copyFileSync(probe, copy);
        chmodSync(copy, 0o644);
        const exited = spawn('true');
        await new Promise((resolve) => exited.once('exit', resolve));
        const asNobody = (pid: number): string =>
          execFileSync(
            process.execPath,
            [
              '--input-type=module',
              '-e',
              `import { processExists } from ${JSON.stringify(copy)}; console.log(processExists(${pid}))`,
            ],
            { uid: NOBODY, gid: NOBODY, cwd: folder, encoding: 'utf8' },
          ).trim();
        assert.equal(asNobody(process.pid), 'true', 'a running process of another user');
        assert.equal(asNobody(exited.pid!), 'false', 'a process that exited');
        assert.equal(processExists(exited.pid!), false);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    },
  );
});

function skipUnlessRoot(): string | false {
  return process.getuid?.() === 0 ? false : 'runs the probe as `nobody`, which needs root';
}
