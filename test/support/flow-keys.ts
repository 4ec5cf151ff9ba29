/** Reading flow-control keys through the API, and a callee that counts calls in flight, for the flow-control tests. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eventually } from './eventually.js';
import type { Harness } from './harness.js';
import type { Responder } from './receiver.js';

/** A key no other test (or earlier run on a shared server) uses. */
export const newKey = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;

/** Answers after `ms` (and after `gate`, when given), counting how many calls it holds at once. */
export function concurrencyCounter(ms: number, gate?: Promise<void>): { responder: Responder; peak: () => number } {
  let current = 0;
  let peak = 0;
  return {
    peak: () => peak,
    responder: async (_received, response) => {
      current++;
      peak = Math.max(peak, current);
      await gate;
      await new Promise((resolve) => setTimeout(resolve, ms));
      current--;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    },
  };
}

export async function flowKey(on: Harness, key: string): Promise<any> {
  const response = await on.api('GET', `/v1/flow-control/${encodeURIComponent(key)}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

export async function waitForKey(on: Harness, key: string, predicate: (view: any) => boolean, what: string): Promise<any> {
  return eventually(
    async () => {
      const view = await flowKey(on, key);
      return predicate(view) ? view : undefined;
    },
    { timeoutMs: 30_000, what: `key ${key}: ${what}` },
  );
}
