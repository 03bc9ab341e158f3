/**
 * One `abort` listener per signal, however many waits share it. Users often pass one shutdown
 * signal to every acquisition; a listener per pending call would make Node warn of a leak
 * (MaxListenersExceededWarning) at the eleventh waiter.
 */
const subscribersBySignal = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` when `signal` aborts; the returned function unsubscribes it. For backends
 * whose waits listen to a caller's signal: many waits on one signal share a single listener, and
 * unsubscribing is a set deletion, where `removeEventListener` costs tens of microseconds on a
 * cold CPU (it runs on every wake-up).
 *
 * @example
 * ```ts
 * const stopListening = whenAborted(signal, () => reject(signal.reason));
 * // ...once the wait is over:
 * stopListening();
 * ```
 */
export function whenAborted(signal: AbortSignal, callback: () => void): () => void {
  let subscribers = subscribersBySignal.get(signal);
  if (subscribers === undefined) {
    const created = new Set<() => void>();
    subscribers = created;
    subscribersBySignal.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        subscribersBySignal.delete(signal);
        for (const subscriber of created) subscriber();
      },
      { once: true },
    );
  }
  const own = subscribers;
  own.add(callback);
  return () => own.delete(callback);
}
