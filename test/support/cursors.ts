/**
 * A list cursor the API did not issue, made from one it did: the last byte of its MAC flipped.
 * Replacing the cursor's last characters instead is no forgery when they already were those
 * characters (1 time in 4096 for two of them), and a flake in the test that relies on it.
 */
export function tamperedCursor(cursor: string): string {
  const bytes = Buffer.from(cursor, 'base64url');
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
  return bytes.toString('base64url');
}
