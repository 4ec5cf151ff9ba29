/**
 * A dev server that dies at start is reported with what it printed: the first lines (a Go panic's
 * cause comes first, before every goroutine's stack) and the last, never only the tail.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DevServer, outputExcerpt } from '../src/dev/dev-server.js';

let dir: string;
const previousCli = process.env.TEMPORAL_CLI;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-dev-server-errors-'));
});

after(async () => {
  if (previousCli === undefined) delete process.env.TEMPORAL_CLI;
  else process.env.TEMPORAL_CLI = previousCli;
  await rm(dir, { recursive: true, force: true });
});

describe('dev server start failures', () => {
  it('name the cause a crashing server printed first, and its last lines', async () => {
    // A `temporal` binary that crashes the way the CLI does on a panic: cause first, then stacks.
    const cli = path.join(dir, 'temporal');
    await writeFile(
      cli,
      '#!/usr/bin/env bash\n' +
        'echo "panic: listen tcp 127.0.0.1:7235: bind: address already in use" >&2\n' +
        'for i in $(seq 1 300); do echo "goroutine frame $i" >&2; done\n' +
        'exit 2\n',
    );
    await chmod(cli, 0o755);
    process.env.TEMPORAL_CLI = cli;
    await assert.rejects(DevServer.start({ port: 0, uiPort: null, namespace: 'default' }), (err: Error) => {
      assert.match(err.message, /did not start: exited with code 2/);
      assert.match(err.message, /panic: listen tcp 127\.0\.0\.1:7235: bind: address already in use/);
      assert.match(err.message, /goroutine frame 300$/);
      // 301 lines printed: 6 first, 14 last, 281 between.
      assert.match(err.message, /… \(281 lines left out\)/);
      return true;
    });
  });

  it('excerpts long output as head and tail, short output whole', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    assert.equal(outputExcerpt(lines.slice(0, 20)), lines.slice(0, 20).join('\n'));
    const excerpt = outputExcerpt(lines).split('\n');
    assert.deepEqual(excerpt.slice(0, 6), lines.slice(0, 6));
    assert.equal(excerpt[6], '… (10 lines left out)');
    assert.deepEqual(excerpt.slice(7), lines.slice(-14));
    // Lines a bounded buffer let go count too.
    assert.equal(outputExcerpt(lines, 100).split('\n')[6], '… (110 lines left out)');
  });
});
