import type { HolderInfo, LockInfo } from './backend.js';

/** What printed forms show in place of a token. */
export const REDACTED = '[redacted]';

/**
 * The symbol `util.inspect` (and so `console.log`) looks up for a custom printed form. Taken from
 * the global registry so that core needs no import of `node:util`.
 */
export const inspectSymbol: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/**
 * Makes the holders of `info` print their token as `'[redacted]'` in `util.inspect`,
 * `console.log` and `JSON.stringify`, so logs and inspection tools never leak a token by
 * accident. The data is unchanged: `holder.token` still reads the token, and a copy such as
 * `{ ...holder }` is a plain object again. Backends call it on what `inspection.inspect` returns.
 *
 * @param info - what a backend's `inspect` is about to return; changed in place
 * @returns `info` itself
 * @example
 * ```ts
 * readonly inspection = {
 *   inspect: async ({ key }: InspectRequest): Promise<LockInfo | null> =>
 *     hideTokens(await this.#read(key)),
 * };
 * ```
 */
export function hideTokens<Info extends LockInfo | null>(info: Info): Info {
  if (info === null) return info;
  for (const holder of info.holders) hideToken(holder);
  return info;
}

function hideToken(holder: HolderInfo): void {
  const redacted = function (this: HolderInfo): HolderInfo {
    return { ...this, token: REDACTED };
  };
  const printed = function (
    this: HolderInfo,
    _depth: number,
    options: object,
    inspect?: (value: unknown, options: object) => string,
  ): unknown {
    return inspect ? inspect(redacted.call(this), options) : redacted.call(this);
  };
  // Not enumerable: equality checks, spreads and `Object.keys` see the same fields as before.
  Object.defineProperty(holder, 'toJSON', { value: redacted, configurable: true });
  Object.defineProperty(holder, inspectSymbol, { value: printed, configurable: true });
}
