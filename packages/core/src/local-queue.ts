/**
 * In-process FIFO of the callers waiting for each key. Only the head of a key's queue asks the
 * backend; the others wait their turn here. This is what makes a busy key fair inside one
 * process (the worker that just released cannot barge ahead of those already waiting) and
 * spares the backend a thundering herd of retries on every release.
 */
export class LocalQueue {
  readonly #queues = new Map<string, Ticket[]>();

  /** Joins the queue for `key`; the ticket's `turn` resolves when it reaches the head. */
  enter(key: string): Ticket {
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(key, queue);
    }
    const ticket = new Ticket((grantedWeight) => this.#leave(key, ticket, grantedWeight));
    queue.push(ticket);
    if (queue.length === 1) ticket.promote();
    return ticket;
  }

  /** Tells the head waiting on `key` that this process just released it. */
  notifyReleased(key: string): void {
    this.#queues.get(key)?.[0]?.wake();
  }

  #leave(key: string, ticket: Ticket, grantedWeight: number | undefined): void {
    const queue = this.#queues.get(key);
    if (queue === undefined) return;
    const index = queue.indexOf(ticket);
    if (index === -1) return;
    queue.splice(index, 1);
    if (queue.length === 0) {
      this.#queues.delete(key);
    } else if (index === 0) {
      queue[0]!.promote(grantedWeight);
    }
  }
}

/** One caller's place in a {@link LocalQueue}. */
export class Ticket {
  /** Resolves once this ticket is at the head of its key's queue. */
  readonly turn: Promise<void>;
  readonly #leave: (grantedWeight: number | undefined) => void;
  #promote!: () => void;
  #atHead = false;
  #behindLocalGrant: number | undefined;
  #wakeListener: (() => void) | undefined;
  #pendingWake = false;

  constructor(leave: (grantedWeight: number | undefined) => void) {
    this.#leave = leave;
    this.turn = new Promise((resolve) => {
      this.#promote = resolve;
    });
  }

  /** True once this ticket is at the head of its key's queue (it may be from the start). */
  get atHead(): boolean {
    return this.#atHead;
  }

  /**
   * The weight the ticket ahead was granted when it left and made this one the head; undefined
   * when this ticket came first or the one ahead left without a grant.
   */
  get behindLocalGrant(): number | undefined {
    return this.#behindLocalGrant;
  }

  /** Leaves the queue without a grant (timed out, aborted, failed). */
  leave(): void {
    this.#leave(undefined);
  }

  /** Leaves the queue holding a grant of `weight`: the next head knows the lock is held here. */
  leaveGranted(weight: number): void {
    this.#leave(weight);
  }

  promote(behindLocalGrant?: number): void {
    this.#atHead = true;
    this.#behindLocalGrant = behindLocalGrant;
    this.#promote();
  }

  /** Resolves on the next local release of the key (or at once if one came since the last call). */
  nextLocalRelease(): Promise<undefined> {
    if (this.#pendingWake) {
      this.#pendingWake = false;
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      this.#wakeListener = () => resolve(undefined);
    });
  }

  /** Stops the listener of the last {@link nextLocalRelease}: later wake-ups are kept instead. */
  stopListening(): void {
    this.#wakeListener = undefined;
  }

  /** Forgets wake-ups from before an attempt: the attempt itself sees the state they announced. */
  forgetWakeups(): void {
    this.#pendingWake = false;
  }

  wake(): void {
    const listener = this.#wakeListener;
    this.#wakeListener = undefined;
    if (listener) listener();
    else this.#pendingWake = true;
  }
}
