/**
 * The callback request's HTTP method (CONTRACT v2, "More create fields"). Free of imports, so the
 * API's schemas can use it without loading the workflow SDK.
 */
export const CALLBACK_METHODS = ['POST', 'PUT', 'PATCH', 'GET', 'DELETE'] as const;
export type CallbackMethod = (typeof CALLBACK_METHODS)[number];
/** What a task without a method (one created before `method` existed) calls with. */
export const DEFAULT_CALLBACK_METHOD: CallbackMethod = 'POST';

/** `GET` and `DELETE` carry no body, and so no Content-Type. */
export function methodHasBody(method: CallbackMethod | undefined): boolean {
  return method !== 'GET' && method !== 'DELETE';
}
