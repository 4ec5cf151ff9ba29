/**
 * Runs `body` with one environment variable set (or unset, for `undefined`) and puts the old
 * value back afterwards, whether `body` returns, throws or its promise settles.
 */
export function withEnv<T>(name: string, value: string | undefined, body: () => T): T {
  const saved = process.env[name];
  const restore = (): void => {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  };
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  let result: T;
  try {
    result = body();
  } catch (err) {
    restore();
    throw err;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
