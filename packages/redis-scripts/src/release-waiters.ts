/** How an adapter drives its one dedicated subscriber connection. */
export interface ReleaseSubscriber {
  /** Subscribe to `channel`; `onMessage` runs for every message on it until unsubscribed. */
  subscribe(channel: string, onMessage: () => void): Promise<void>;
  /** Stop listening to `channel`. */
  unsubscribe(channel: string): Promise<void>;
}

interface Channel {
  waiters: Set<() => void>;
  /** Settles when the subscription is in place; waiters wait for it before counting as listening. */
  subscribed: Promise<void>;
}

/**
 * Multiplexes the waiters of every key over one subscriber connection: a channel is subscribed
 * when its first waiter arrives and unsubscribed when its last one leaves, whether woken or aborted.
 */
export class ReleaseWaiters {
  readonly #subscriber: ReleaseSubscriber;
  readonly #channels = new Map<string, Channel>();
  #closedWith: Error | undefined;
  readonly #rejecters = new Set<(error: Error) => void>();

  constructor(subscriber: ReleaseSubscriber) {
    this.#subscriber = subscriber;
  }

  /** Channels with at least one waiter. */
  get channelCount(): number {
    return this.#channels.size;
  }

  /** Resolves on the next message on `channel`; rejects with `signal.reason` on abort. */
  wait(channel: string, signal: AbortSignal): Promise<void> {
    if (this.#closedWith) return Promise.reject(this.#closedWith);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      let entry = this.#channels.get(channel);
      if (entry === undefined) {
        const created: Channel = { waiters: new Set(), subscribed: Promise.resolve() };
        created.subscribed = this.#subscriber.subscribe(channel, () => {
          for (const wake of [...created.waiters]) wake();
        });
        entry = created;
        this.#channels.set(channel, entry);
      }
      const current = entry;
      const settle = (error?: unknown) => {
        current.waiters.delete(wake);
        this.#rejecters.delete(rejectClosed);
        signal.removeEventListener('abort', onAbort);
        if (current.waiters.size === 0 && this.#channels.get(channel) === current) {
          this.#channels.delete(channel);
          // Best effort: a failed unsubscribe only leaves a channel nobody listens to.
          current.subscribed
            .then(() => this.#subscriber.unsubscribe(channel))
            .catch(() => undefined);
        }
        if (error === undefined) resolve();
        else reject(error);
      };
      const wake = () => settle();
      const onAbort = () => settle(signal.reason);
      const rejectClosed = (error: Error) => settle(error);
      current.waiters.add(wake);
      this.#rejecters.add(rejectClosed);
      signal.addEventListener('abort', onAbort, { once: true });
      current.subscribed.catch((error: unknown) => {
        if (current.waiters.has(wake)) settle(error);
      });
    });
  }

  /** Rejects every current waiter with `error`; later calls of `wait` reject with it too. */
  close(error: Error): void {
    this.#closedWith = error;
    for (const reject of [...this.#rejecters]) reject(error);
    this.#channels.clear();
  }
}
