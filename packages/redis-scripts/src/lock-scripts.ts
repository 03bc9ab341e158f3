import {
  type AcquireRequest,
  type AcquireResult,
  type AdvanceFenceRequest,
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertExtendRequest,
  assertReleaseRequest,
  type ExtendRequest,
  type LockInfo,
  type ReleaseRequest,
} from '@deadbolt/core';
import { type LockKeys, lockKeys, type RedisBackendOptions } from './keys.js';
import { runScript, type ScriptTransport, scripts } from './scripts.js';

/** How a release reaches waiters: classic pub/sub, or sharded pub/sub on a Redis 7 Cluster. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/** Options of {@link RedisLockScripts}. */
export interface RedisLockScriptsOptions extends Required<RedisBackendOptions> {
  /** @default 'PUBLISH' */
  publishCommand?: PublishCommand;
}

/**
 * The storage operations of a `LockBackend`, run as the deadbolt Lua scripts over any client.
 * Adapters add only the transport and the subscriber.
 */
export class RedisLockScripts {
  readonly #transport: ScriptTransport;
  readonly #prefix: string;
  readonly #publish: PublishCommand;

  constructor(transport: ScriptTransport, options: RedisLockScriptsOptions) {
    this.#transport = transport;
    this.#prefix = options.prefix;
    this.#publish = options.publishCommand ?? 'PUBLISH';
  }

  /** The names of `key`'s data and release channel. */
  keys(key: string): LockKeys {
    return lockKeys(this.#prefix, key);
  }

  /** The channel `release` publishes on for `key` (in the same hash slot as the key's data). */
  releaseChannel(key: string): string {
    return this.keys(key).channel;
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    const { token, ttlMs, limit, weight, queueTtlMs } = request;
    const reply = await runScript(this.#transport, scripts.acquire, this.#allKeys(request.key), [
      token,
      String(Math.ceil(ttlMs)),
      String(limit),
      String(weight),
      String(queueTtlMs === undefined ? 0 : Math.ceil(queueTtlMs)),
      this.#publish,
    ]);
    const [granted, first, second] = integers(reply, 'acquire');
    if (granted === 1) return { ok: true, fence: first ?? 0, ttlMs: second ?? ttlMs };
    return first === undefined || first < 0 ? { ok: false } : { ok: false, retryInMs: first };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    const { holders, weights, fence } = this.keys(request.key);
    const reply = await runScript(
      this.#transport,
      scripts.extend,
      [holders, weights, fence],
      [request.token, String(Math.ceil(request.ttlMs))],
    );
    return integers(reply, 'extend')[0] === 1;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    const reply = await runScript(this.#transport, scripts.release, this.#allKeys(request.key), [
      request.token,
      this.#publish,
    ]);
    return integers(reply, 'release')[0] === 1;
  }

  async advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    const { holders, weights, fence } = this.keys(request.key);
    await runScript(
      this.#transport,
      scripts.advanceFence,
      [holders, weights, fence],
      [String(request.fence)],
    );
  }

  async inspect(key: string): Promise<LockInfo | null> {
    const { holders, weights, fence, queue, waiting } = this.keys(key);
    const reply = await runScript(
      this.#transport,
      scripts.inspect,
      [holders, weights, fence, queue, waiting],
      [],
    );
    if (!Array.isArray(reply)) throw unexpected('inspect', reply);
    const [lastFence, queued, ...rest] = reply as unknown[];
    const info: LockInfo = { key, holders: [], fence: toInteger(lastFence, 'inspect') };
    for (let index = 0; index + 2 < rest.length; index += 3) {
      info.holders.push({
        token: String(rest[index]),
        weight: toInteger(rest[index + 1], 'inspect'),
        ttlMs: toInteger(rest[index + 2], 'inspect'),
      });
    }
    if (info.holders.length === 0) return null;
    return { ...info, queued: toInteger(queued, 'inspect') };
  }

  #allKeys(key: string): string[] {
    const { holders, weights, fence, queue, waiting, channel } = this.keys(key);
    return [holders, weights, fence, queue, waiting, channel];
  }
}

/** Decodes an array-of-integers reply (ioredis and node-redis both give numbers for Lua integers). */
function integers(reply: unknown, script: string): number[] {
  if (!Array.isArray(reply)) throw unexpected(script, reply);
  return reply.map((value) => toInteger(value, script));
}

function toInteger(value: unknown, script: string): number {
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number)) throw unexpected(script, value);
  return number;
}

function unexpected(script: string, reply: unknown): Error {
  return new Error(`[deadbolt] [redis-scripts] unexpected reply from ${script}: ${String(reply)}`);
}
