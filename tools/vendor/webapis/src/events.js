// Event and EventTarget: event-target-shim, which follows the DOM Standard's event dispatch
// (capture and bubble flags, once, passive, signal, handleEvent objects, stopImmediatePropagation).
//
// CustomEvent, AbortController and AbortSignal are glue written here, on that EventTarget.
// No maintained package has them in their current form: abort-controller 3.0.0 (2019)
// predates abort reasons, and calls EventTarget as a function, which event-target-shim 6's
// class forbids; abortcontroller-polyfill's signal is not an EventTarget. AbortSignal.timeout
// needs a timer, so the runtime adds it (vmctl/worker/webapis.js).
import { Event, EventTarget, defineEventAttribute, setWarningHandler } from "event-target-shim";

// The shim warns on console about what browsers and Node accept silently (a listener added
// twice, preventDefault() on an event that is not cancelable).
setWarningHandler(() => {});

class CustomEvent extends Event {
  #detail;
  constructor(type, eventInitDict = undefined) {
    super(type, eventInitDict);
    this.#detail = eventInitDict?.detail ?? null;
  }
  get detail() {
    return this.#detail;
  }
}

const constructing = Symbol("constructing");
let signalAbort; // (signal, reason): the DOM's "signal abort"

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;

  constructor(key) {
    if (key !== constructing) throw new TypeError("Illegal constructor");
    super();
  }

  get aborted() {
    return this.#aborted;
  }

  get reason() {
    return this.#reason;
  }

  throwIfAborted() {
    if (this.#aborted) throw this.#reason;
  }

  static abort(reason) {
    const signal = new AbortSignal(constructing);
    signalAbort(signal, reason);
    return signal;
  }

  static any(signals) {
    const sources = [...signals];
    for (const source of sources) {
      if (!(source instanceof AbortSignal)) {
        throw new TypeError("AbortSignal.any() takes an iterable of AbortSignal objects");
      }
    }
    const signal = new AbortSignal(constructing);
    const aborted = sources.find((source) => source.#aborted);
    if (aborted !== undefined) {
      signalAbort(signal, aborted.#reason);
      return signal;
    }
    const listeners = sources.map((source) => [source, () => {
      for (const [each, listener] of listeners) each.removeEventListener("abort", listener);
      signalAbort(signal, source.#reason);
    }]);
    for (const [source, listener] of listeners) source.addEventListener("abort", listener);
    return signal;
  }

  static {
    signalAbort = (signal, reason) => {
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason === undefined
        ? new DOMException("This operation was aborted", "AbortError") : reason;
      signal.dispatchEvent(new Event("abort"));
    };
  }
}
defineEventAttribute(AbortSignal.prototype, "abort"); // onabort

class AbortController {
  #signal = new AbortSignal(constructing);

  get signal() {
    return this.#signal;
  }

  abort(reason) {
    signalAbort(this.#signal, reason);
  }
}

for (const [ctor, tag] of [[CustomEvent, "CustomEvent"], [AbortSignal, "AbortSignal"],
  [AbortController, "AbortController"]]) {
  Object.defineProperty(ctor.prototype, Symbol.toStringTag, { value: tag, configurable: true });
}

export { Event, EventTarget, CustomEvent, AbortController, AbortSignal };
