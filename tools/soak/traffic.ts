/**
 * The app's endpoints on one loopback receiver, and what they saw: each callback path answers as
 * its task kind asks (succeed, fail, flaky, slow, hang, delayed), each webhook delivery is recorded
 * with whether its Standard Webhooks signature verifies, and a share of first deliveries is refused.
 */
import type { ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { firstHeader } from '../shared/http-headers.js';
import { isRecord, parseJson } from '../shared/json-values.js';
import type { ReceivedRequest, Receiver, Responder } from './receiver.js';

export interface CallbackHit {
  attempt: string;
  messageId: string;
  at: number;
}

export interface WebhookHit {
  messageId: string;
  status: string;
  answered: number;
  signatureOk: boolean;
  at: number;
}

/** What the receiver saw, by task id. */
export class Traffic {
  readonly callbacks = new Map<string, CallbackHit[]>();
  readonly webhooks = new Map<string, WebhookHit[]>();
  private readonly firstWebhookRefused = new Set<string>();
  private readonly verifier: Webhook;

  constructor(secret: string) {
    this.verifier = new Webhook(secret);
  }

  install(receiver: Receiver): void {
    const answer = (status: number, body: unknown) => (response: ServerResponse) => {
      if (response.destroyed || response.writableEnded) return; // AsyncQueue already hung up
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const callback =
      (respond: (received: ReceivedRequest, response: ServerResponse) => void): Responder =>
      (received, response) => {
        this.recordCallback(received);
        respond(received, response);
      };
    const marker = (received: ReceivedRequest): unknown => {
      const payload = parseJson(received.body);
      return isRecord(payload) ? payload.marker : undefined;
    };
    receiver
      .always(
        '/cb/succeed',
        callback((received, response) => answer(200, { marker: marker(received) })(response)),
      )
      .always(
        '/cb/fail',
        callback((_received, response) => answer(422, { error: 'unprocessable' })(response)),
      )
      .always(
        '/cb/flaky',
        callback((received, response) =>
          received.headers['asyncqueue-attempt'] === '1'
            ? answer(503, { error: 'try again' })(response)
            : answer(200, { marker: marker(received) })(response),
        ),
      )
      .always(
        '/cb/slow',
        callback((received, response) => {
          const payload = parseJson(received.body);
          const slowMs = isRecord(payload) && typeof payload.slowMs === 'number' ? payload.slowMs : 2_000;
          setTimeout(() => answer(200, { marker: marker(received), slowMs })(response), slowMs);
        }),
      )
      // Never answers: AsyncQueue aborts the request when the task is cancelled (or times out).
      .always(
        '/cb/hang',
        callback(() => undefined),
      )
      .always(
        '/cb/delayed',
        callback((received, response) => answer(200, { marker: marker(received) })(response)),
      )
      .always('/hook/ok', (received, response) => answer(this.recordWebhook(received, false), { received: true })(response))
      .always('/hook/flaky', (received, response) => answer(this.recordWebhook(received, true), { received: true })(response));
  }

  /** Webhook requests answered 2xx for this task. */
  delivered(taskId: string): WebhookHit[] {
    return (this.webhooks.get(taskId) ?? []).filter((hit) => hit.answered < 300);
  }

  get callbackCount(): number {
    let count = 0;
    for (const hits of this.callbacks.values()) count += hits.length;
    return count;
  }

  get webhookCount(): number {
    let count = 0;
    for (const hits of this.webhooks.values()) count += hits.length;
    return count;
  }

  private recordCallback(received: ReceivedRequest): void {
    const taskId = firstHeader(received.headers, 'asyncqueue-task-id') ?? 'unknown';
    const hits = this.callbacks.get(taskId) ?? [];
    hits.push({
      attempt: firstHeader(received.headers, 'asyncqueue-attempt') ?? '?',
      messageId: firstHeader(received.headers, 'webhook-id') ?? '',
      at: received.receivedAt,
    });
    this.callbacks.set(taskId, hits);
  }

  /** Records a webhook delivery and returns the status code to answer it with. */
  private recordWebhook(received: ReceivedRequest, refuseFirst: boolean): number {
    const event = parseJson(received.body);
    const taskId = isRecord(event) && typeof event.taskId === 'string' ? event.taskId : 'unknown';
    let answered = 200;
    if (refuseFirst && !this.firstWebhookRefused.has(taskId)) {
      this.firstWebhookRefused.add(taskId);
      answered = 503;
    }
    const hits = this.webhooks.get(taskId) ?? [];
    hits.push({
      messageId: firstHeader(received.headers, 'webhook-id') ?? '',
      status: isRecord(event) && typeof event.status === 'string' ? event.status : '?',
      answered,
      signatureOk: this.signatureOk(received),
      at: received.receivedAt,
    });
    this.webhooks.set(taskId, hits);
    return answered;
  }

  private signatureOk(received: ReceivedRequest): boolean {
    const headers: Record<string, string> = {};
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'])
      headers[name] = firstHeader(received.headers, name) ?? '';
    try {
      this.verifier.verify(received.body, headers);
      return true;
    } catch {
      return false;
    }
  }
}
