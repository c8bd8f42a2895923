// The abort signal a stage sees, which tells afterwards whether the stage noticed the abort.
// A stage whose run() returns after Ctrl-C either finished its work (it never looked: a long
// native call, a sleep, a last epoch that was nearly done) or stopped early and returned what it
// had (a loop that breaks on `signal.aborted`). The first is a result to keep, the second must
// not be stored under the node's key; only whether the stage saw the abort tells them apart.

export interface WatchedSignal {
  signal: AbortSignal;
  /** Whether the stage read `aborted` as true (or `reason`, or called `throwIfAborted`) after
   *  the abort, or had an abort listener or onabort handler registered when it came. A signal
   *  derived from it (AbortSignal.any) is not seen: a stage must act on this one. */
  noticed(): boolean;
  /** Stops following the run's signal (a run-wide one outlives the node). */
  dispose(): void;
}

const abortedOf = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

/** A signal that follows `run`; a real AbortSignal (timers, fetch and streams accept it). */
export function watchedSignal(run: AbortSignal): WatchedSignal {
  const own = new AbortController();
  const signal = own.signal;
  let readAborted = false;
  // The stage's abort listeners still registered (a listener removed after an early fetch or
  // sleep does not make a later, finished result look interrupted), and its onabort handler.
  const listeners = new Set<EventListenerOrEventListenerObject>();
  let handlerSet = false;
  let listenedAtAbort = false;
  // Node's onabort setter registers its own wrapper through addEventListener: not a listener.
  let inSetter = false;
  // Own properties of this one instance shadow the prototype's: brand checks still pass.
  const noteRead = <T>(value: T): T => {
    if (abortedOf.call(signal) === true) readAborted = true;
    return value;
  };
  Object.defineProperty(signal, 'aborted', { configurable: true, get: () => noteRead(abortedOf.call(signal) as boolean) });
  const reasonOf = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;
  Object.defineProperty(signal, 'reason', { configurable: true, get: () => noteRead(reasonOf.call(signal) as unknown) });
  const throwIfAborted = signal.throwIfAborted.bind(signal);
  Object.defineProperty(signal, 'throwIfAborted', {
    configurable: true,
    value: () => {
      noteRead(undefined);
      throwIfAborted();
    },
  });
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  const addEventListener: AbortSignal['addEventListener'] = (type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions) => {
    if (type === 'abort' && listener && !inSetter) listeners.add(listener);
    add(type, listener, options);
  };
  const removeEventListener: AbortSignal['removeEventListener'] = (type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions) => {
    if (type === 'abort' && listener && !inSetter) listeners.delete(listener);
    remove(type, listener, options);
  };
  Object.defineProperty(signal, 'addEventListener', { configurable: true, value: addEventListener });
  Object.defineProperty(signal, 'removeEventListener', { configurable: true, value: removeEventListener });
  const onabort = Object.getOwnPropertyDescriptor(EventTarget.prototype, 'onabort') ?? Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'onabort');
  if (onabort?.set) {
    Object.defineProperty(signal, 'onabort', {
      configurable: true,
      get: () => onabort.get?.call(signal),
      set(handler: unknown) {
        handlerSet = Boolean(handler);
        inSetter = true;
        try {
          onabort.set!.call(signal, handler);
        } finally {
          inSetter = false;
        }
      },
    });
  }
  const follow = () => {
    listenedAtAbort = listeners.size > 0 || handlerSet;
    own.abort(run.reason);
  };
  if (run.aborted) follow();
  else run.addEventListener('abort', follow, { once: true });
  return {
    signal,
    noticed: () => readAborted || listenedAtAbort,
    dispose: () => run.removeEventListener('abort', follow),
  };
}
