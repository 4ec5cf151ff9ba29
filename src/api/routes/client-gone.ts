/** A signal that fires when the client hangs up before its answer is sent (a `?wait` it gave up on). */
import type { FastifyReply } from 'fastify';

export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // `close` on the response also fires after a normal finish: only an unfinished answer means
  // the client left.
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
