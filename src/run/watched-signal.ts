// The abort signal a stage sees, which tells afterwards whether the stage noticed the abort.
// A stage whose run() returns after Ctrl-C either finished its work (it never looked: a long
// native call, a sleep, a last epoch that was nearly done) or stopped early and returned what it
// had (a loop that breaks on `signal.aborted`). The first is a result to keep, the second must
// not be stored under the node's key; only whether the stage saw the abort tells them apart.

export interface WatchedSignal {
  signal: AbortSignal;
  /** Whether the stage read `aborted` as true, or had an abort listener when the abort came. */
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
  let listening = false;
  // Own properties of this one instance shadow the prototype's: brand checks still pass.
  Object.defineProperty(signal, 'aborted', {
    configurable: true,
    get() {
      const aborted = abortedOf.call(signal) as boolean;
      if (aborted) readAborted = true;
      return aborted;
    },
  });
  const add = signal.addEventListener.bind(signal);
  const addEventListener: AbortSignal['addEventListener'] = (type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions) => {
    if (type === 'abort') listening = true;
    add(type, listener, options);
  };
  Object.defineProperty(signal, 'addEventListener', { configurable: true, value: addEventListener });
  const onabort = Object.getOwnPropertyDescriptor(EventTarget.prototype, 'onabort') ?? Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'onabort');
  if (onabort?.set) {
    Object.defineProperty(signal, 'onabort', {
      configurable: true,
      get: () => onabort.get?.call(signal),
      set(handler: unknown) {
        if (handler) listening = true;
        onabort.set!.call(signal, handler);
      },
    });
  }
  const follow = () => own.abort(run.reason);
  if (run.aborted) follow();
  else run.addEventListener('abort', follow, { once: true });
  return {
    signal,
    noticed: () => readAborted || (listening && abortedOf.call(signal) === true),
    dispose: () => run.removeEventListener('abort', follow),
  };
}
