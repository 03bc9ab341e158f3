import type {
  AcquireGranted,
  AcquireRequest,
  AcquireResult,
  AdvanceFenceRequest,
  ExtendRequest,
  HolderInfo,
  LockBackend,
  LockInfo,
  ReleaseRequest,
} from './backend.js';
import { InvalidArgumentError, QuorumError } from './errors.js';
import { hideTokens } from './redact.js';
import {
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertBackend,
  assertExtendRequest,
  assertKey,
  assertOptions,
  assertPositiveDuration,
  assertReleaseRequest,
  assertWaitForRelease,
  show,
} from './validation.js';

/** Options of {@link quorum}. */
export interface QuorumOptions {
  /**
   * Share of the TTL set aside for clock drift between the servers and this process: a grant is
   * valid for `ttl - elapsed - ttl * driftFactor - 2 ms`.
   * @default 0.01
   */
  driftFactor?: number;
  /**
   * Retry hint (ms) reported when no majority granted. By default the quorum reports when a
   * majority of members expect a permit to free up, from their own hints.
   */
  retryInMs?: number;
}

/**
 * Redlock over any backends: a lock is held when a majority of `backends` grant it within its
 * validity window, so it survives a minority of them failing.
 *
 * Fences stay strictly increasing across acquisitions that land on different majorities: before
 * a grant returns, its fence (the highest any member granted) is written back to a majority, and
 * every later majority intersects that one. This holds as long as no majority of members loses
 * its data at once (for example by restarting empty together).
 *
 * Waiters race for a quorum lock: members keep no queue places (each would order waiters by
 * when their requests reached it, and with a different head on each, nobody would win a
 * majority), so `fair` has no effect and no grant is handed over on release.
 *
 * Members must implement `advanceFence` (every deadbolt backend does). `close()` of the quorum
 * closes nothing: the members belong to the caller.
 *
 * @param backends - independent backends, typically one per Redis server; 3 or 5 is usual
 * @example
 * ```ts
 * const backend = quorum(urls.map((url) => new IoredisBackend(new Redis(url))));
 * const locks = new LockManager({ backend });
 * ```
 */
export function quorum(backends: readonly LockBackend[], options?: QuorumOptions): LockBackend {
  return new QuorumBackend(backends, options);
}

const DEFAULT_DRIFT_FACTOR = 0.01;
/** Fixed part of the drift allowance, for timer and network granularity. */
const DRIFT_FLOOR_MS = 2;

/** A member backend, checked to implement `advanceFence`. */
type Member = LockBackend & Pick<Required<LockBackend>, 'advanceFence'>;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

class QuorumBackend implements LockBackend {
  readonly #members: readonly Member[];
  readonly #majority: number;
  readonly #driftFactor: number;
  readonly #retryInMs: number | undefined;

  constructor(backends: readonly LockBackend[], options: QuorumOptions | undefined) {
    if (!Array.isArray(backends) || backends.length === 0) {
      throw new InvalidArgumentError('backends', 'expected a non-empty array of backends');
    }
    // A plain loop, not forEach: forEach skips the holes of a sparse array such as [a, , b].
    for (let index = 0; index < backends.length; index++) {
      const backend = backends[index];
      assertBackend(backend, `backends[${index}]`);
      if (typeof backend.advanceFence !== 'function') {
        throw new InvalidArgumentError(
          `backends[${index}]`,
          'does not implement advanceFence(), which quorum() needs to keep fences increasing',
        );
      }
      if (backends.indexOf(backend) !== index) {
        throw new InvalidArgumentError(
          `backends[${index}]`,
          `is the same backend as backends[${backends.indexOf(backend)}]; a quorum needs independent members`,
        );
      }
    }
    assertOptions(options, 'options', ['driftFactor', 'retryInMs']);
    const driftFactor = options?.driftFactor ?? DEFAULT_DRIFT_FACTOR;
    const retryInMs = options?.retryInMs;
    if (typeof driftFactor !== 'number' || !(driftFactor >= 0 && driftFactor < 0.5)) {
      throw new InvalidArgumentError(
        'options.driftFactor',
        `expected a number from 0 to below 0.5, got ${show(driftFactor)}`,
      );
    }
    if (retryInMs !== undefined) assertPositiveDuration(retryInMs, 'options.retryInMs');
    this.#members = [...backends] as Member[];
    this.#majority = Math.floor(backends.length / 2) + 1;
    this.#driftFactor = driftFactor;
    this.#retryInMs = retryInMs;
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    const startedAt = Date.now();
    // Members never queue: each would put waiters in the order their requests reached it, and
    // with a different head on each member no waiter could win a majority. Nor do they hand off,
    // which would grant a lease on one member alone.
    const { queueTtlMs: _place, handoff: _handoff, ...forMembers } = request;
    const answers = await this.#onAll((member) => member.acquire(forMembers));
    const grants = answers.flatMap((answer) =>
      answer.ok && answer.value.ok ? [answer.value] : [],
    );
    if (grants.length >= this.#majority) {
      const fence = Math.max(...grants.map((grant) => grant.fence));
      if (await this.#writeBackFence(request.key, fence, answers)) {
        const validity = this.#validity(request.ttlMs, grants, startedAt);
        if (validity > 0) return { ok: true, fence, ttlMs: validity };
      }
    }
    // No usable majority: undo every partial grant (also where the answer was lost in an error,
    // since the member may have applied it) so nothing blocks others until its TTL.
    await this.#onAll((member) => member.release({ key: request.key, token: request.token }));
    this.#throwIfMajorityUnreachable(answers, `acquire of "${request.key}"`);
    return { ok: false, ...this.#retryHint(answers) };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    const answers = await this.#onAll((member) => member.extend(request));
    if (answers.filter((answer) => answer.ok && answer.value).length >= this.#majority) {
      return true;
    }
    // Too few members answered to tell: a transient failure the caller may retry.
    this.#throwIfMajorityUnreachable(answers, `extend of "${request.key}"`);
    return false;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    const answers = await this.#onAll((member) => member.release(request));
    if (answers.filter((answer) => answer.ok && answer.value).length >= this.#majority) {
      return true;
    }
    this.#throwIfMajorityUnreachable(answers, `release of "${request.key}"`);
    return false;
  }

  async advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    const answers = await this.#onAll((member) => member.advanceFence(request));
    this.#throwIfMajorityUnreachable(answers, `advancing the fence of "${request.key}"`);
  }

  /**
   * Wakes on the first member that reports a release (since `since`, if given). A quorum never
   * hands off (see `acquire`), so `token` changes nothing.
   */
  waitForRelease(key: string, signal: AbortSignal, since?: number, token?: string): Promise<void> {
    try {
      assertWaitForRelease(key, signal, since, token);
    } catch (error) {
      return Promise.reject(error);
    }
    const watching = this.#members.filter((member) => member.waitForRelease);
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const stop = new AbortController();
      const finish = (settle: () => void) => {
        signal.removeEventListener('abort', onAbort);
        stop.abort();
        settle();
      };
      const onAbort = () => finish(() => reject(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      let failures = 0;
      for (const member of watching) {
        member.waitForRelease?.(key, stop.signal, since).then(
          () => finish(resolve),
          (error: unknown) => {
            // One member failing to watch is no reason to stop waiting on the others; the
            // manager's backoff still retries meanwhile.
            failures += 1;
            if (failures === watching.length && !stop.signal.aborted) finish(() => reject(error));
          },
        );
      }
    });
  }

  /** Holders that a majority of members agree on, and the highest fence any member knows. */
  async inspect(key: string): Promise<LockInfo | null> {
    assertKey(key);
    const answers = await this.#onAll((member) => member.inspect?.(key) ?? Promise.resolve(null));
    this.#throwIfMajorityUnreachable(answers, `inspect of "${key}"`);
    const infos = answers.flatMap((answer) => (answer.ok && answer.value ? [answer.value] : []));
    const seen = new Map<string, HolderInfo[]>();
    for (const holder of infos.flatMap((info) => info.holders)) {
      seen.set(holder.token, [...(seen.get(holder.token) ?? []), holder]);
    }
    const holders = [...seen.values()]
      .filter((copies) => copies.length >= this.#majority)
      .map((copies) => ({
        token: copies[0]!.token,
        weight: copies[0]!.weight,
        ttlMs: Math.min(...copies.map((copy) => copy.ttlMs)),
      }));
    if (holders.length === 0) return null;
    return hideTokens({ key, holders, fence: Math.max(0, ...infos.map((info) => info.fence)) });
  }

  /** Makes a majority know `fence`, counting members that granted exactly it. */
  async #writeBackFence(
    key: string,
    fence: number,
    answers: readonly Settled<AcquireResult>[],
  ): Promise<boolean> {
    const behind = this.#members.filter((_, index) => {
      const answer = answers[index];
      return !(answer?.ok && answer.value.ok && answer.value.fence === fence);
    });
    const current = this.#members.length - behind.length;
    if (current >= this.#majority) {
      // A majority already counts from `fence`; advancing the rest is only a courtesy.
      for (const member of behind) member.advanceFence({ key, fence }).catch(() => undefined);
      return true;
    }
    const advanced = await Promise.allSettled(
      behind.map((member) => member.advanceFence({ key, fence })),
    );
    return (
      current + advanced.filter((result) => result.status === 'fulfilled').length >= this.#majority
    );
  }

  #validity(ttlMs: number, grants: readonly AcquireGranted[], startedAt: number): number {
    const shortest = Math.min(ttlMs, ...grants.map((grant) => grant.ttlMs));
    const drift = ttlMs * this.#driftFactor + DRIFT_FLOOR_MS;
    return Math.floor(shortest - (Date.now() - startedAt) - drift);
  }

  #retryHint(answers: readonly Settled<AcquireResult>[]): { retryInMs?: number } {
    if (this.#retryInMs !== undefined) return { retryInMs: this.#retryInMs };
    const hints = answers
      .flatMap((answer) =>
        answer.ok && !answer.value.ok && answer.value.retryInMs !== undefined
          ? [answer.value.retryInMs]
          : [],
      )
      .sort((a, b) => a - b);
    // A majority is free once the majority-th soonest member frees up.
    const hint = hints[this.#majority - 1];
    return hint === undefined ? {} : { retryInMs: hint };
  }

  #throwIfMajorityUnreachable(answers: readonly Settled<unknown>[], what: string): void {
    const failed = answers.filter((answer) => !answer.ok).length;
    if (this.#members.length - failed >= this.#majority) return;
    throw new QuorumError(
      `${what} reached ${this.#members.length - failed} of ${this.#members.length} backends; a majority is ${this.#majority}`,
      answers.map((answer) => (answer.ok ? null : answer.error)),
    );
  }

  #onAll<T>(call: (member: Member) => Promise<T>): Promise<Settled<T>[]> {
    return Promise.all(
      this.#members.map(async (member): Promise<Settled<T>> => {
        try {
          return { ok: true, value: await call(member) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
  }
}
