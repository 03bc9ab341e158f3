/** @module @deadbolt/redis-scripts: the Lua, key schema and reply decoding every Redis adapter shares. */
// CONTRACT (written before the implementation so adapters and scripts can be built side by side).
// The implementation replaces the bodies below and may split them into files, keeping these names.
import type {
  AcquireRequest,
  AcquireResult,
  ExtendRequest,
  LockInfo,
  ReleaseRequest,
} from '@deadbolt/core';

/**
 * The two raw calls an adapter supplies so the scripts can run on its client.
 * Both reject with the client's own error; a missing script is an error whose message starts
 * with `NOSCRIPT`.
 */
export interface ScriptTransport {
  /** `EVALSHA sha numkeys ...keys ...args` */
  evalsha(sha: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /** `EVAL source numkeys ...keys ...args` (loads the script into the server's cache too) */
  eval(source: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
}

/** Options every Redis adapter accepts. */
export interface RedisBackendOptions {
  /**
   * Namespace of every key and channel this backend touches. Two backends with different
   * prefixes never see each other's locks. Must not contain `{` or `}`.
   * @default 'deadbolt'
   */
  prefix?: string;
}

/** Validates adapter options (unknown names, prefix shape) and fills defaults. */
export declare function resolveRedisBackendOptions(
  options: RedisBackendOptions | undefined,
): Required<RedisBackendOptions>;

/** The lock operations of `LockBackend`, run as Lua scripts through a {@link ScriptTransport}. */
export declare class RedisLockScripts {
  constructor(transport: ScriptTransport, options: Required<RedisBackendOptions>);
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  extend(request: ExtendRequest): Promise<boolean>;
  release(request: ReleaseRequest): Promise<boolean>;
  inspect(key: string): Promise<LockInfo | null>;
  /** The channel `release` publishes on for `key` (same hash slot as the key's data). */
  releaseChannel(key: string): string;
}

/** How an adapter subscribes its one dedicated subscriber connection. */
export interface ReleaseSubscriber {
  /** Subscribe to `channel`; `onMessage` runs for every message on it until unsubscribed. */
  subscribe(channel: string, onMessage: () => void): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
}

/**
 * Multiplexes the waiters of every key over one subscriber: subscribes to a key's release channel
 * when its first waiter arrives and unsubscribes when its last one leaves.
 */
export declare class ReleaseWaiters {
  constructor(subscriber: ReleaseSubscriber);
  /** Resolves on the next release message for `channel`; rejects with `signal.reason` on abort. */
  wait(channel: string, signal: AbortSignal): Promise<void>;
  /** Rejects every current waiter with `error`; later `wait` calls reject too. */
  close(error: Error): void;
}
