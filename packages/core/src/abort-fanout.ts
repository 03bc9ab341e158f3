/**
 * One `abort` listener per signal, however many waits share it. Users often pass one shutdown
 * signal to every acquisition; a listener per pending call would make Node warn of a leak
 * (MaxListenersExceededWarning) at the eleventh waiter.
 */
const subscribersBySignal = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `callback` when `signal` aborts; the returned function unsubscribes it. */
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
