import type { LockManager } from '@deadbolt/core';

/** Gives a held lock back; resolves once the library reports the release done. */
export type Release = () => Promise<void>;

/** One process's handle on a lock library: one client, as an application would create it. */
export interface LockClient {
  /**
   * Waits for the lock on `key` the way the library waits (its own retries, wake-ups and
   * timeout) and resolves the function that releases it. Rejects when the library gives up.
   */
  acquire(key: string): Promise<Release>;
  /** Closes every connection `open` created. */
  close(): Promise<void>;
}

/**
 * What a contender is for the targets: the floor, deadbolt with its defaults (judged), deadbolt
 * with another setting (shown, not judged), the in-process ceiling or a peer.
 */
export type ContenderRole = 'raw' | 'deadbolt' | 'option' | 'ceiling' | 'peer';

/** One row of every table: a lock library with one set of settings. */
export interface Contender {
  /** Stable id: the key in the JSON, and how a child process finds the contender again. */
  readonly id: string;
  /** Row label in the tables. */
  readonly label: string;
  /** Package and version under test. */
  readonly library: string;
  /** `defaults`, or the settings that differ from the library's documented defaults. */
  readonly settings: string;
  readonly role: ContenderRole;
  /** False for the in-process backend: its locks cannot span processes and cost Redis nothing. */
  readonly usesRedis: boolean;
  /**
   * Opens one client with its own connections. Clients of one contender share one lock space
   * (the same Redis, or the same in-process backend), so two of them contend like two processes.
   */
  open(redisUrl: string): Promise<LockClient>;
}

/** A deadbolt `LockManager` as a {@link LockClient}: `acquire` waits with its defaults, `close` is the caller's. */
export function managerClient(locks: LockManager, close: () => Promise<void>): LockClient {
  return {
    async acquire(key) {
      const lock = await locks.acquire(key);
      return async () => {
        await lock.release();
      };
    },
    close,
  };
}

/** The lease every contender asks for where the library needs one: deadbolt's default TTL. */
export const LEASE_MS = 30_000;
