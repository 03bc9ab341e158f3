import type {
  AcquireGranted,
  AcquireRequest,
  AcquireResult,
  AdvanceFenceRequest,
  ExtendRequest,
  FenceCapability,
  HolderInfo,
  InspectionCapability,
  InspectRequest,
  LockBackend,
  LockInfo,
  QueueCapability,
  QueuedAcquireRequest,
  ReleaseRequest,
  WaitRequest,
  WakeUpCapability,
} from './backend.js';
import { InvalidArgumentError, QuorumError } from './errors.js';
import { READ_WRITE_LIMIT } from './limits.js';
import { hideTokens } from './redact.js';
import {
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertBackend,
  assertExtendRequest,
  assertInspectRequest,
  assertOptions,
  assertPositiveDuration,
  assertQueuedAcquireRequest,
  assertReleaseRequest,
  assertWaitRequest,
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
 * Waiters queue on every member in one order that the quorum gives them (members ordering
 * waiters by when each request reached them would each have another head, and nobody would win a
 * majority), so fair waiting and a waiting writer's block on new readers hold across the quorum.
 * No grant is handed over on release (a handoff happens on one member alone): the head of the
 * queue is woken and asks the members again.
 *
 * `extend` repairs the lease on members that lost it (a server that restarted empty) while a
 * majority still holds it, so a long-held lock survives a rolling restart of its servers.
 *
 * Members must have the `fences` capability (every deadbolt backend does). The quorum has `queue`
 * when every member has, `wakeUps` when any has, `inspection` when every member has, and never
 * `handoff` or `close`: the members belong to the caller.
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

/** A member backend, checked to have the `fences` capability. */
type Member = LockBackend & Pick<Required<LockBackend>, 'fences'>;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Entries by token, each kept until a deadline: a Map keeps insertion order, and every `set`
 * moves its entry to the end, so the entries past their deadline are always at the front and
 * pruning them costs only what it removes.
 */
class ExpiringMap<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();

  get(token: string): V | undefined {
    return this.#entries.get(token)?.value;
  }

  set(token: string, value: V, until: number): void {
    this.#entries.delete(token);
    this.#entries.set(token, { value, until });
    this.prune(Date.now());
  }

  delete(token: string): void {
    this.#entries.delete(token);
  }

  prune(now: number): void {
    for (const [token, entry] of this.#entries) {
      if (entry.until > now) return;
      this.#entries.delete(token);
    }
  }
}

class QuorumBackend implements LockBackend {
  readonly queue?: QueueCapability;
  readonly wakeUps?: WakeUpCapability;
  readonly fences: FenceCapability;
  readonly inspection?: InspectionCapability;
  readonly #members: readonly Member[];
  readonly #majority: number;
  readonly #driftFactor: number;
  readonly #retryInMs: number | undefined;
  /** The queue order of each waiting token, the same on every member, while its place lasts. */
  readonly #queueOrders = new ExpiringMap<number>();
  #lastQueueOrder = 0;
  /** What each granted token holds, while its lease lasts, to take it again on a member that lost it. */
  readonly #leases = new ExpiringMap<Pick<AcquireRequest, 'limit' | 'weight'>>();

  constructor(backends: readonly LockBackend[], options: QuorumOptions | undefined) {
    if (!Array.isArray(backends) || backends.length === 0) {
      throw new InvalidArgumentError('backends', 'expected a non-empty array of backends');
    }
    // A plain loop, not forEach: forEach skips the holes of a sparse array such as [a, , b].
    for (let index = 0; index < backends.length; index++) {
      const backend = backends[index];
      assertBackend(backend, `backends[${index}]`);
      if (backend.fences === undefined) {
        throw new InvalidArgumentError(
          `backends[${index}]`,
          'has no fences capability, which quorum() needs to keep fences increasing',
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
    const members = [...backends] as Member[];
    this.#members = members;
    this.#majority = Math.floor(backends.length / 2) + 1;
    this.#driftFactor = driftFactor;
    this.#retryInMs = retryInMs;
    this.fences = { advance: (request) => this.#advanceFence(request) };
    if (members.every((member) => member.queue)) {
      this.queue = { acquire: (request) => this.#acquireQueued(request) };
    }
    if (members.some((member) => member.wakeUps)) {
      this.wakeUps = { waitForRelease: (request) => this.#waitForRelease(request) };
    }
    if (members.every((member) => member.inspection)) {
      this.inspection = { inspect: (request) => this.#inspect(request) };
    }
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    assertCountable(request);
    return this.#acquire(request, (member) => member.acquire(request));
  }

  /**
   * A queued attempt: the place goes on every member in one order, the quorum's, so that all
   * agree on who is first. No handoff: it would grant a lease on one member alone.
   */
  async #acquireQueued(request: QueuedAcquireRequest): Promise<AcquireResult> {
    assertQueuedAcquireRequest(request);
    assertCountable(request);
    const { handoff: _handoff, ...forMembers } = request;
    forMembers.order ??= this.#queueOrder(request.token, Date.now() + request.placeTtlMs);
    return this.#acquire(request, (member) =>
      (member.queue as QueueCapability).acquire(forMembers),
    );
  }

  async #acquire(
    request: AcquireRequest,
    acquireOn: (member: Member) => Promise<AcquireResult>,
  ): Promise<AcquireResult> {
    const startedAt = Date.now();
    const answers = await this.#onAll(acquireOn);
    const grants = answers.flatMap((answer) =>
      answer.ok && answer.value.ok ? [answer.value] : [],
    );
    if (grants.length >= this.#majority) {
      const fence = Math.max(...grants.map((grant) => grant.fence));
      if (await this.#writeBackFence(request.key, fence, answers)) {
        const validity = this.#validity(request.ttlMs, grants, startedAt);
        if (validity > 0) {
          this.#queueOrders.delete(request.token);
          const { limit, weight } = request;
          this.#leases.set(request.token, { limit, weight }, startedAt + request.ttlMs);
          return { ok: true, fence, ttlMs: validity };
        }
      }
    }
    // No usable majority: undo every partial grant (also where the answer was lost in an error,
    // since the member may have applied it) so nothing blocks others until its TTL. Members that
    // refused keep the request's queue place.
    const { key, token } = request;
    await this.#onAll((member, index) =>
      answers[index]?.ok && !answers[index].value.ok
        ? Promise.resolve(false)
        : member.release({ key, token }),
    );
    this.#throwIfMajorityUnreachable(answers, `acquire of "${request.key}"`);
    return { ok: false, ...this.#retryHint(answers) };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    const startedAt = Date.now();
    const answers = await this.#onAll((member) => member.extend(request));
    if (answers.filter((answer) => answer.ok && answer.value).length >= this.#majority) {
      await this.#repair(request, answers, startedAt);
      return true;
    }
    // Too few members answered to tell: a transient failure the caller may retry.
    this.#throwIfMajorityUnreachable(answers, `extend of "${request.key}"`);
    this.#leases.delete(request.token);
    return false;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    this.#queueOrders.delete(request.token);
    this.#leases.delete(request.token);
    const answers = await this.#onAll((member) => member.release(request));
    if (answers.filter((answer) => answer.ok && answer.value).length >= this.#majority) {
      return true;
    }
    this.#throwIfMajorityUnreachable(answers, `release of "${request.key}"`);
    return false;
  }

  async #advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    const answers = await this.#onAll((member) => member.fences.advance(request));
    this.#throwIfMajorityUnreachable(answers, `advancing the fence of "${request.key}"`);
  }

  /** Wakes on the first member that reports a release. */
  #waitForRelease(request: WaitRequest): Promise<void> {
    try {
      assertWaitRequest(request);
    } catch (error) {
      return Promise.reject(error);
    }
    const { key, signal, since } = request;
    const watching = this.#members.flatMap((member) => (member.wakeUps ? [member.wakeUps] : []));
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
      for (const wakeUps of watching) {
        wakeUps
          .waitForRelease({ key, signal: stop.signal, ...(since === undefined ? {} : { since }) })
          .then(
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
  async #inspect(request: InspectRequest): Promise<LockInfo | null> {
    assertInspectRequest(request);
    const { key } = request;
    const answers = await this.#onAll(
      (member) => member.inspection?.inspect({ key }) ?? Promise.resolve(null),
    );
    this.#throwIfMajorityUnreachable(answers, `inspect of "${key}"`);
    const infos = answers.flatMap((answer) => (answer.ok && answer.value ? [answer.value] : []));
    const seen = new Map<string, HolderInfo[]>();
    for (const holder of infos.flatMap((info) => info.holders)) {
      seen.set(holder.token, [...(seen.get(holder.token) ?? []), holder]);
    }
    const holders = [...seen.values()]
      .filter((copies) => copies.length >= this.#majority)
      .map(([first, ...rest]) => ({
        ...(first as HolderInfo),
        ttlMs: Math.min(...[first as HolderInfo, ...rest].map((copy) => copy.ttlMs)),
      }));
    if (holders.length === 0) return null;
    const queued = Math.max(0, ...infos.map((info) => info.queued ?? 0));
    return hideTokens({
      key,
      holders,
      fence: Math.max(0, ...infos.map((info) => info.fence)),
      ...(this.queue ? { queued } : {}),
    });
  }

  /**
   * Takes the lease again, for `token`, on the members that answered an extension with false while
   * a majority still holds it: a member that restarted empty lost it, and without this a few
   * restarts of different members would lose a lock that a majority could have kept.
   */
  async #repair(
    request: ExtendRequest,
    answers: readonly Settled<boolean>[],
    startedAt: number,
  ): Promise<void> {
    const held = this.#leases.get(request.token);
    if (held === undefined) return;
    const { key, token, ttlMs } = request;
    this.#leases.set(token, held, startedAt + ttlMs);
    const lost = this.#members.filter((_, index) => {
      const answer = answers[index];
      return answer?.ok === true && !answer.value;
    });
    await Promise.allSettled(
      lost.map((member) => member.acquire({ key, token, ttlMs, ...held }).catch(() => undefined)),
    );
  }

  /**
   * The order of `token`'s place on every member: when the quorum first saw it queue, in
   * microseconds, strictly increasing, kept while the place may last.
   */
  #queueOrder(token: string, placeEnd: number): number {
    let order = this.#queueOrders.get(token);
    if (order === undefined) {
      this.#lastQueueOrder = Math.max(this.#lastQueueOrder + 1, Date.now() * 1000);
      order = this.#lastQueueOrder;
    }
    this.#queueOrders.set(token, order, placeEnd);
    return order;
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
      for (const member of behind) member.fences.advance({ key, fence }).catch(() => undefined);
      return true;
    }
    const advanced = await Promise.allSettled(
      behind.map((member) => member.fences.advance({ key, fence })),
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

  #onAll<T>(call: (member: Member, index: number) => Promise<T>): Promise<Settled<T>[]> {
    return Promise.all(
      this.#members.map(async (member, index): Promise<Settled<T>> => {
        try {
          return { ok: true, value: await call(member, index) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
  }
}

/**
 * Refuses the permits a quorum cannot count: those of a semaphore, where holders take fewer
 * permits than the limit. Each member counts only the grants it made, and two majorities need
 * share only one member: of 3 members with a limit of 3, A (1 permit) granted by members 0 and 1,
 * B (2) by 1 and 2 and C (1) by 0 and 2 keep every member within the limit, and hold 4 permits.
 * A holder that takes the whole limit (a mutex, a read-write writer) meets every other holder on
 * a member that refuses one of them, and readers only need to meet writers.
 */
function assertCountable(request: AcquireRequest): void {
  const { limit, weight } = request;
  if (weight === limit || limit === READ_WRITE_LIMIT) return;
  throw new InvalidArgumentError(
    'request.weight',
    `${weight} of ${limit} permits: quorum() cannot keep a semaphore within its limit, since the majorities that grant its permits need not share a member; use a semaphore on one backend, and mutexes or read-write locks over a quorum`,
  );
}
