import type { Lock } from './lock.js';
import { inspectSymbol } from './redact.js';

/**
 * Several locks taken together (`locks.acquireAll`): held when every one is, signalled when any
 * is lost, extended and released together.
 *
 * @example
 * ```ts
 * await using both = await locks.acquireAll(['account:1', 'account:2']);
 * await transfer(1, 2, { fences: both.locks.map((lock) => lock.fence) });
 * ```
 */
export class LockSet implements AsyncDisposable {
  /** The locks, in the order they were taken: by key, so that no two callers wait in a cycle. */
  readonly locks: readonly Lock[];
  #signal: AbortSignal | undefined;

  /** @internal Created by `LockManager.acquireAll`. */
  constructor(locks: readonly Lock[]) {
    this.locks = locks;
  }

  /** The keys, in the order the locks were taken. */
  get keys(): string[] {
    return this.locks.map((lock) => lock.key);
  }

  /** The fence of the lock on `key`; undefined when the set has none. */
  fenceOf(key: string): number | undefined {
    return this.locks.find((lock) => lock.key === key)?.fence;
  }

  /** True while every lock is held (judged by the clock, like `lock.held`). */
  get held(): boolean {
    return this.locks.every((lock) => lock.held);
  }

  /** When the first of the leases ends at the latest. */
  get expiresAt(): number {
    return Math.min(...this.locks.map((lock) => lock.expiresAt));
  }

  /** Aborted, with the first lost lock's `LockLostError`, when any lock is lost. */
  get signal(): AbortSignal {
    this.#signal ??= AbortSignal.any(this.locks.map((lock) => lock.signal));
    return this.#signal;
  }

  /**
   * Extends every lease (to `ttl`, or the TTL each was acquired with).
   *
   * @throws `LockLostError` when any lock was lost; the others are extended anyway
   */
  async extend(ttl?: number): Promise<void> {
    const results = await Promise.allSettled(this.locks.map((lock) => lock.extend(ttl)));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Stops auto-extension of every lock (see `lock.stopExtending`). */
  stopExtending(): void {
    for (const lock of this.locks) lock.stopExtending();
  }

  /**
   * Releases every lock. Resolves `true` when this call released them all, `false` when any was
   * already gone (see `lock.release`).
   *
   * @throws the first `BackendError` when the backend could not be reached for some; the
   *   others are released anyway
   */
  async release(): Promise<boolean> {
    const results = await Promise.allSettled(this.locks.map((lock) => lock.release()));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return results.every((result) => result.status === 'fulfilled' && result.value);
  }

  /** Releases every lock at the end of an `await using` block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** What `JSON.stringify` gives: each lock's logged form, without tokens. */
  toJSON(): { locks: ReturnType<Lock['toJSON']>[]; held: boolean } {
    return { locks: this.locks.map((lock) => lock.toJSON()), held: this.held };
  }

  /** What `util.inspect` prints: no token. */
  [inspectSymbol](
    _depth: number,
    options: object,
    inspect?: (value: unknown, options: object) => string,
  ): string {
    return `LockSet ${inspect ? inspect(this.toJSON(), options) : JSON.stringify(this.toJSON())}`;
  }
}
