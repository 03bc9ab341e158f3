import { type HandedOff, whenAborted } from '@deadbolt/core';

/** How an adapter drives its one dedicated subscriber connection. */
export interface ReleaseSubscriber {
  /** Subscribe to `channel`; `onMessage` runs with every message on it until unsubscribed. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  /** Stop listening to `channel`. */
  unsubscribe(channel: string): Promise<void>;
}

/** A waiter's way out: woken with nothing, handed a grant, or failed. */
type Settle = (error?: unknown, handedOff?: HandedOff) => void;

interface Channel {
  /** One settle function per waiter. */
  waiters: Set<Settle>;
  /** The waiters that can be handed a grant, by token, with the attempt each waits for. */
  grantees: Map<string, { attempt: number; settle: Settle }>;
  /** Grants that came for a token nobody was waiting with, and when (`Date.now()`). */
  unclaimed: Map<string, { handedOff: HandedOff; at: number }>;
  /** Settles when the subscription is in place (or failed to be). */
  subscribed: Promise<void>;
  /** Set while the channel has no waiters but stays subscribed for a while. */
  lingering: NodeJS.Timeout | undefined;
  /** The subscribe failed: the entry must go with its waiters, so the next waiter tries again. */
  failed: boolean;
  /** When the last message came (`Date.now()`), for waiters who were busy attempting then. */
  lastMessageAt: number;
}

/** Options of {@link ReleaseWaiters}. */
export interface ReleaseWaitersOptions {
  /**
   * How long a channel stays subscribed after its last waiter left, in ms. A waiter that was
   * refused again re-waits within a round trip; lingering spares a SUBSCRIBE/UNSUBSCRIBE pair
   * each time, and the wake-up that every new subscription sends (see {@link ReleaseWaiters.wait}).
   * @default 1_000
   */
  lingerMs?: number;
}

/**
 * How long a grant waits for its waiter to listen again before it is dropped (the waiter then asks
 * again). Only a bound on memory: whether a grant is still good is told by its attempt.
 */
const UNCLAIMED_MS = 10_000;

/**
 * Multiplexes the waiters of every key over one subscriber connection: a channel is subscribed
 * when its first waiter arrives and unsubscribed when its last one leaves, whether woken, aborted
 * or failed. A message wakes every waiter of its channel, except a grant
 * (`granted <fence> <ttlMs> <afterMs> <attempt> <token>`), which goes to the waiter of that token
 * and attempt only: a grant for an earlier attempt of the token is stale and dropped.
 *
 * @example
 * ```ts
 * const waiters = new ReleaseWaiters({ subscribe, unsubscribe });
 * await waiters.wait('deadbolt:{report}', AbortSignal.timeout(5_000));
 * ```
 */
export class ReleaseWaiters {
  readonly #subscriber: ReleaseSubscriber;
  readonly #channels = new Map<string, Channel>();
  /**
   * Per channel, the tail of its subscribe/unsubscribe calls. Each call waits for the previous
   * one, so the unsubscribe of a channel whose last waiter just left can never reach the
   * connection after the subscribe of a new waiter that arrived right behind it.
   */
  readonly #tails = new Map<string, Promise<void>>();
  readonly #rejecters = new Set<Settle>();
  readonly #lingerMs: number;
  #closedWith: Error | undefined;
  /** Counts {@link reset}s: an operation queued before one does not run after it. */
  #generation = 0;

  /**
   * @param subscriber - the adapter's dedicated subscriber connection
   * @param options - `lingerMs`
   */
  constructor(subscriber: ReleaseSubscriber, options: ReleaseWaitersOptions = {}) {
    this.#subscriber = subscriber;
    this.#lingerMs = options.lingerMs ?? 1_000;
  }

  /** Channels subscribed now (with waiters, or lingering after the last one left). */
  get channelCount(): number {
    return this.#channels.size;
  }

  /**
   * Resolves on the next message on `channel`, or as soon as a new subscription of it is in
   * place: a release that came between the caller's last attempt and the subscription would
   * otherwise be missed, so the caller should simply try again. With `handoff`, resolves with the
   * grant when one comes for that token and attempt (or came while the caller was not listening).
   * Rejects with `signal.reason` on abort, with the subscriber's error when subscribing fails, and
   * with the close error after {@link close}.
   *
   * @param channel - the release channel of one key
   * @param signal - abort to stop waiting
   * @param since - when the caller's last attempt started (`Date.now()`): a message that came
   *   after it, while the caller was not listening, resolves the wait at once
   * @param handoff - the caller's token and attempt, when its request asked to be handed the lock
   */
  wait(
    channel: string,
    signal: AbortSignal,
    since?: number,
    handoff?: { token: string; attempt: number },
  ): Promise<HandedOff | undefined> {
    if (this.#closedWith) return Promise.reject(this.#closedWith);
    if (signal.aborted) return Promise.reject(signal.reason);
    const known = this.#channels.get(channel);
    const unclaimed = handoff && known?.unclaimed.get(handoff.token);
    if (handoff && unclaimed) {
      known?.unclaimed.delete(handoff.token);
      // A grant for an earlier attempt is stale: that attempt's refusal came after it.
      if (unclaimed.handedOff.attempt === handoff.attempt) {
        return Promise.resolve(unclaimed.handedOff);
      }
    }
    if (since !== undefined && known !== undefined && known.lastMessageAt >= since) {
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      const entry = this.#channels.get(channel) ?? this.#open(channel);
      clearTimeout(entry.lingering);
      entry.lingering = undefined;
      const settle: Settle = (error, handedOff) => {
        if (!entry.waiters.delete(settle)) return;
        if (handoff && entry.grantees.get(handoff.token)?.settle === settle) {
          entry.grantees.delete(handoff.token);
        }
        this.#rejecters.delete(settle);
        stopListening();
        if (entry.waiters.size === 0) this.#leave(channel, entry);
        if (error === undefined) resolve(handedOff);
        else reject(error);
      };
      entry.waiters.add(settle);
      if (handoff) entry.grantees.set(handoff.token, { attempt: handoff.attempt, settle });
      this.#rejecters.add(settle);
      const stopListening = whenAborted(signal, () => settle(signal.reason));
      entry.subscribed.catch((error: unknown) => settle(error));
    });
  }

  /**
   * Rejects every current waiter with `error`, and every later call of {@link wait} too. Leaves the
   * subscriptions alone: the owner closes the whole connection next.
   *
   * @param error - what the waiters reject with
   */
  close(error: Error): void {
    this.#closedWith = error;
    this.reset(error);
  }

  /**
   * Rejects every current waiter with `error` and forgets every subscription, for a subscriber
   * connection that is gone (closed because the user's client ended): later waits subscribe
   * afresh, on whatever connection the owner gives them then. What was queued for the old
   * connection and has not started yet is dropped, so it can neither wait for it forever nor
   * unsubscribe a new waiter's channel.
   *
   * @param error - what the current waiters reject with
   */
  reset(error: Error): void {
    this.#generation += 1;
    this.#tails.clear();
    for (const entry of this.#channels.values()) clearTimeout(entry.lingering);
    // Cleared first, so the waiters leaving below unsubscribe nothing.
    this.#channels.clear();
    for (const reject of [...this.#rejecters]) reject(error);
  }

  #open(channel: string): Channel {
    const entry: Channel = {
      waiters: new Set(),
      grantees: new Map(),
      unclaimed: new Map(),
      subscribed: Promise.resolve(),
      lingering: undefined,
      failed: false,
      lastMessageAt: Number.NEGATIVE_INFINITY,
    };
    const wakeAll = () => {
      for (const settle of [...entry.waiters]) settle();
    };
    const onMessage = (message: string) => {
      const grant = parseGrant(message);
      if (grant === undefined) {
        entry.lastMessageAt = Date.now();
        wakeAll();
        return;
      }
      // A grant is news for its waiter only: for everyone else the lock is as taken as before.
      const grantee = entry.grantees.get(grant.token);
      if (grantee) {
        // A waiter listens for its latest attempt only: a grant for an earlier one is stale.
        if (grantee.attempt === grant.handedOff.attempt) grantee.settle(undefined, grant.handedOff);
        return;
      }
      const now = Date.now();
      for (const [token, { at }] of entry.unclaimed) {
        if (now - at > UNCLAIMED_MS) entry.unclaimed.delete(token);
      }
      entry.unclaimed.set(grant.token, { handedOff: grant.handedOff, at: now });
    };
    entry.subscribed = this.#serially(channel, () =>
      this.#subscriber.subscribe(channel, onMessage),
    );
    // Runs before the waiters' own handlers, which were attached later.
    entry.subscribed.then(wakeAll, () => {
      entry.failed = true;
    });
    this.#channels.set(channel, entry);
    return entry;
  }

  /** The last waiter of `entry` left: forget it and unsubscribe, unless closing anyway. */
  #leave(channel: string, entry: Channel): void {
    if (this.#channels.get(channel) !== entry || this.#closedWith) return;
    if (this.#lingerMs > 0 && !entry.failed) {
      entry.lingering = setTimeout(() => {
        entry.lingering = undefined;
        if (entry.waiters.size === 0) this.#unsubscribe(channel, entry);
      }, this.#lingerMs);
      entry.lingering.unref();
      return;
    }
    this.#unsubscribe(channel, entry);
  }

  #unsubscribe(channel: string, entry: Channel): void {
    if (this.#channels.get(channel) !== entry) return;
    this.#channels.delete(channel);
    if (this.#closedWith) return;
    this.#serially(channel, async () => {
      // Nothing to undo when the subscribe itself failed.
      const subscribed = await entry.subscribed.then(
        () => true,
        () => false,
      );
      if (subscribed) await this.#subscriber.unsubscribe(channel);
    }).catch(() => {
      // Best effort: a failed unsubscribe only leaves a channel that nobody listens to.
    });
  }

  /** Runs `operation` on `channel` after every earlier one on it has settled. */
  #serially(channel: string, operation: () => Promise<void>): Promise<void> {
    const previous = this.#tails.get(channel) ?? Promise.resolve();
    const generation = this.#generation;
    const result = previous.then(() =>
      generation === this.#generation ? operation() : Promise.reject(STALE),
    );
    const tail = result.catch(() => undefined);
    this.#tails.set(channel, tail);
    void tail.then(() => {
      if (this.#tails.get(channel) === tail) this.#tails.delete(channel);
    });
    return result;
  }
}

/** What an operation queued before a {@link ReleaseWaiters.reset} rejects with, instead of running. */
const STALE = new Error('the subscriber connection was reset');

/** The grant in a `granted <fence> <ttlMs> <afterMs> <attempt> <token>` message; undefined for any other. */
function parseGrant(message: string): { token: string; handedOff: HandedOff } | undefined {
  if (!message.startsWith('granted ')) return undefined;
  // Four numbers, then the token, which may hold spaces of its own.
  const numbers: number[] = [];
  let start = 8;
  for (let index = 0; index < 4; index++) {
    const end = message.indexOf(' ', start);
    if (end === -1) return undefined;
    const number = Number(message.slice(start, end));
    if (!Number.isSafeInteger(number)) return undefined;
    numbers.push(number);
    start = end + 1;
  }
  if (start === message.length) return undefined;
  const [fence, ttlMs, afterMs, attempt] = numbers as [number, number, number, number];
  return { token: message.slice(start), handedOff: { ok: true, fence, ttlMs, afterMs, attempt } };
}
