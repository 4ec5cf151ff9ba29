import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export const VERSION = manifest.version;
/** Sent on every callback and webhook request, so receivers can tell AsyncQueue traffic apart. */
export const USER_AGENT = `AsyncQueue/${VERSION}`;
