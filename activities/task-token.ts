/**
 * The task token a callback request carries (`AsyncQueue-Task-Token`): it lets the callee report
 * progress and complete or fail its own task without an API key.
 *
 * It is derived, never stored: an HMAC of the task id under a server secret that only AsyncQueue
 * holds (not the signing secret, which every receiver knows). The worker derives it when it calls
 * the callback; the API checks a presented token by deriving it again, before any Temporal call.
 * So no token stands in a workflow's input, its history or anything else the Temporal UI shows.
 * Several secrets may be configured during a rotation: the first issues, any of them verifies.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TASK_TOKEN_HEADER = 'asyncqueue-task-token';
const TOKEN_PREFIX = 'aqt1_';
const CONTEXT = 'asyncqueue-task-token-v1';

export class TaskTokenKeys {
  private constructor(private readonly keys: readonly Buffer[]) {}

  /** Secrets of at least 32 characters; undefined when one is too short. */
  static fromSecrets(secrets: readonly string[]): TaskTokenKeys | undefined {
    if (secrets.length === 0 || secrets.some((secret) => secret.length < 32)) return undefined;
    return new TaskTokenKeys(secrets.map((secret) => Buffer.from(secret, 'utf8')));
  }

  /** The token of `taskId`, under the first (issuing) secret. */
  tokenFor(taskId: string): string {
    return derive(this.keys[0]!, taskId);
  }

  /** Constant-time check of `token` against every configured secret. */
  verify(taskId: string, token: string): boolean {
    const presented = Buffer.from(token, 'utf8');
    let valid = false;
    for (const key of this.keys) {
      const expected = Buffer.from(derive(key, taskId), 'utf8');
      // Compare all of them: the timing must not tell which secret matched, or whether one did.
      valid = (expected.length === presented.length && timingSafeEqual(expected, presented)) || valid;
    }
    return valid;
  }
}

function derive(key: Buffer, taskId: string): string {
  return TOKEN_PREFIX + createHmac('sha256', key).update(`${CONTEXT}\n${taskId}`).digest('base64url');
}
