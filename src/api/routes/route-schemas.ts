/** Response maps shared by the /v1 routes: every status each can send, documented once. */
import { ErrorResponses, ErrorSchema, documented } from '../schemas.js';

export const security = [{ apiKey: [] }];
export const errors = {
  400: ErrorResponses.badRequest,
  401: ErrorResponses.unauthorized,
  429: ErrorResponses.rateLimited,
  503: ErrorResponses.unavailable,
};
/** Routes with a body: it may be too large or not JSON. */
export const bodyErrors = { 413: ErrorResponses.payloadTooLarge, 415: ErrorResponses.unsupportedMediaType };
/** Routes with a task id in the path. */
export const taskErrors = { 404: ErrorResponses.notFound };
export const conflict = (description: string) => ({ 409: documented(ErrorSchema, description) });
