/**
 * A list cursor the API did not issue, made from one it did: the last bit of its MAC flipped, the
 * smallest change there is. Writing fixed characters over its end instead is no forgery when the
 * cursor already ended in them (1 time in 4096 for two), and a flake in the test relying on it.
 */
export function tamperedCursor(cursor: string): string {
  const bytes = Buffer.from(cursor, 'base64url');
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  return bytes.toString('base64url');
}
