// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// The common web APIs QuickJS-NG lacks, installed as WebIDL installs globals (non-enumerable,
// writable, configurable properties of globalThis):
//   URL, URLSearchParams                 whatwg-url            lazy
//   TextEncoder, TextDecoder             @exodus/bytes         lazy
//   structuredClone                      @ungap/structured-clone
//   Event, EventTarget, CustomEvent,     event-target-shim and abort-controller, with glue
//   AbortController, AbortSignal         (vendor/events.js); AbortSignal.timeout here
//   crypto (Crypto, SubtleCrypto)        here, over the host's __vmctl_host_crypto
// The libraries are vendored bundles (vendor/*.js, built by tools/vendor/webapis): the worker
// evaluates them before the prelude as `globalThis.__vmctl_vendor = { url: function, ... }`
// (webapis.py); each function initialises its library and returns its exports. A library
// whose initialisation costs more than about 0.1 ms is installed lazily: the global is an
// accessor until first read, so a worker that never uses URL never pays for it.

const vendor = globalThis.__vmctl_vendor;
delete globalThis.__vmctl_vendor;
// The lazy libraries (URL, the text codecs) are not in `vendor`: loadVendor(name) asks the
// host to evaluate one, and the host hands its function to `receive`, which the engine took
// out of the global scope right after the prelude (webapis.py).
const hostLoad = globalThis.__vmctl_host_load;
delete globalThis.__vmctl_host_load;
const ErrorCtor = Error;
let received;
defineProperty(globalThis, "__vmctl_receive", {
  value: function receive(factory) { received = factory; },
  writable: false, configurable: true, enumerable: false,
});

function loadVendor(name) {
  received = undefined;
  const failure = hostLoad(name);
  const factory = received;
  received = undefined;
  if (typeof factory !== "function") {
    throw new ErrorCtor(`vmctl could not load its ${name} library: ${failure}`);
  }
  return factory();
}
const hostCrypto = globalThis.__vmctl_host_crypto;
delete globalThis.__vmctl_host_crypto;

const JSONParse = JSON.parse;
const DOMExceptionCtor = DOMException;
const TypeErrorCtor = TypeError;
const toUpperCase = uncurry(String.prototype.toUpperCase);
const toBase64 = uncurry(Uint8Array.prototype.toBase64);
const Uint8ArrayFromBase64 = Uint8Array.fromBase64;
const fromBase64 = (text) => ReflectApply(Uint8ArrayFromBase64, Uint8ArrayCtor, [text]);
const typedArraySet = uncurry(TypedArrayPrototype.set);
const typedArrayBuffer = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, "buffer").get);
const typedArrayByteOffset = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, "byteOffset").get);
const typedArrayByteLength = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, "byteLength").get);
const dataViewBuffer = uncurry(getOwnPropertyDescriptor(DataView.prototype, "buffer").get);
const dataViewByteOffset = uncurry(getOwnPropertyDescriptor(DataView.prototype, "byteOffset").get);
const NumberIsFinite = Number.isFinite;
const MathTrunc = Math.trunc;
const SymbolToStringTag = Symbol.toStringTag;

function defineGlobal(name, value) {
  defineProperty(globalThis, name, {
    value, writable: true, configurable: true, enumerable: false,
  });
}

// `names` become accessors that load the library on first read (`load()` returns its
// exports) and turn themselves into plain data properties; assigning one first just
// replaces it. So `typeof URL`, `URL = 1` and `delete URL` behave as for any global.
function defineLazyGlobals(names, load) {
  let exports;
  for (const name of names) {
    defineProperty(globalThis, name, {
      get() {
        if (exports === undefined) exports = load();
        defineGlobal(name, exports[name]);
        return exports[name];
      },
      set(value) {
        defineGlobal(name, value);
      },
      configurable: true, enumerable: false,
    });
  }
}

function defineMethod(target, key, value) {
  defineProperty(target, key, { value, writable: true, configurable: true, enumerable: false });
}

// -- URL, URLSearchParams -----------------------------------------------------
// Previews as Node prints them: `URL { href: ..., searchParams: URLSearchParams {...} }`.
function loadURL() {
  const exports = loadVendor("url");
  const { URL, URLSearchParams } = exports;
  defineMethod(URL.prototype, customInspect, function (depth, options) {
    if (typeof depth === "number" && depth < 0) return "[URL]";
    const fields = {
      href: this.href, origin: this.origin, protocol: this.protocol,
      username: this.username, password: this.password, host: this.host,
      hostname: this.hostname, port: this.port, pathname: this.pathname,
      search: this.search, searchParams: this.searchParams, hash: this.hash,
    };
    return `URL ${inspect(fields, options)}`;
  });
  defineMethod(URLSearchParams.prototype, customInspect, function (depth, options) {
    if (typeof depth === "number" && depth < 0) return "[URLSearchParams]";
    const parts = [];
    for (const [key, value] of this) push(parts, `${inspect(key)} => ${inspect(value)}`);
    if (parts.length === 0) return "URLSearchParams {}";
    const oneLine = `URLSearchParams { ${join(parts, ", ")} }`;
    if (oneLine.length <= (options?.breakLength ?? 80)) return oneLine;
    return `URLSearchParams {\n  ${join(parts, ",\n  ")} }`;
  });
  return exports;
}
defineLazyGlobals(["URL", "URLSearchParams"], loadURL);

// -- TextEncoder, TextDecoder -------------------------------------------------
function loadEncoding() {
  const exports = loadVendor("encoding");
  defineMethod(exports.TextEncoder.prototype, customInspect, function (depth, options) {
    return `TextEncoder ${inspect({ encoding: this.encoding }, options)}`;
  });
  defineMethod(exports.TextDecoder.prototype, customInspect, function (depth, options) {
    const fields = { encoding: this.encoding, fatal: this.fatal, ignoreBOM: this.ignoreBOM };
    return `TextDecoder ${inspect(fields, options)}`;
  });
  return exports;
}
defineLazyGlobals(["TextEncoder", "TextDecoder"], loadEncoding);

// -- structuredClone ----------------------------------------------------------
// The library throws a TypeError for what cannot be cloned; the standard says DataCloneError.
const { structuredClone: cloneValue } = vendor.clone();
function structuredClone(value, options) {
  if (arguments.length === 0) {
    throw new TypeErrorCtor("structuredClone: 1 argument required, but only 0 present.");
  }
  const transfer = options?.transfer;
  if (transfer !== undefined && transfer !== null && transfer.length !== 0) {
    throw new DOMExceptionCtor("structuredClone: transfer is not supported", "DataCloneError");
  }
  try {
    return cloneValue(value);
  } catch (error) {
    const message = error instanceof TypeErrorCtor ? error.message : "";
    if (startsWith(message, "unable to serialize ")) {
      throw new DOMExceptionCtor(`${slice(message, 20)} could not be cloned.`, "DataCloneError");
    }
    throw error;
  }
}
defineGlobal("structuredClone", structuredClone);

// -- Event, EventTarget, CustomEvent, AbortController, AbortSignal -------------
const events = vendor.events();
const AbortControllerCtor = events.AbortController;
const abortController = uncurry(AbortControllerCtor.prototype.abort);
const controllerSignal = uncurry(getOwnPropertyDescriptor(AbortControllerCtor.prototype, "signal").get);
const signalAborted = uncurry(getOwnPropertyDescriptor(events.AbortSignal.prototype, "aborted").get);

// WebIDL's [EnforceRange] unsigned long long.
function enforceRange(value, what) {
  const number = +value;
  if (!NumberIsFinite(number)) throw new TypeErrorCtor(`${what} is not a finite number`);
  const integer = MathTrunc(number);
  if (integer < 0 || integer > 2 ** 53 - 1) throw new TypeErrorCtor(`${what} is outside the accepted range`);
  return integer;
}

// A signal that aborts with a TimeoutError after `milliseconds`, on timers.js's queue. As in
// Node, its timer does not keep the execution running: it fires if the execution is still
// running then (waiting on something else), and is dropped when it ends.
defineMethod(events.AbortSignal, "timeout", function timeout(milliseconds) {
  const delay = enforceRange(milliseconds, "AbortSignal.timeout: milliseconds");
  const controller = new AbortControllerCtor();
  setBackgroundTimeout(() => abortController(controller, new DOMExceptionCtor(
    "The operation was aborted due to timeout", "TimeoutError")), delay);
  return controllerSignal(controller);
});
defineMethod(events.AbortSignal.prototype, customInspect, function (depth) {
  return typeof depth === "number" && depth < 0 ? "[AbortSignal]"
    : `AbortSignal { aborted: ${signalAborted(this)} }`;
});
defineMethod(AbortControllerCtor.prototype, customInspect, function (depth) {
  return typeof depth === "number" && depth < 0 ? "[AbortController]"
    : `AbortController { signal: AbortSignal { aborted: ${signalAborted(controllerSignal(this))} } }`;
});
for (const name of ["Event", "EventTarget", "CustomEvent", "AbortController", "AbortSignal"]) {
  defineGlobal(name, events[name]);
}

// -- crypto -------------------------------------------------------------------
// getRandomValues, randomUUID and subtle.digest on the host's standard library
// (hostcrypto.py). Bytes cross as base64 text; the reply is JSON, `{"ok"}` or `{"error",
// "name"}`. Only built-ins captured above are used on the way, so replacing JSON.parse,
// Uint8Array.fromBase64 or DOMException later changes nothing here.
const MAX_RANDOM_BYTES = 65536;
const MAX_DIGEST_BYTES = 64 * 1024 * 1024;
const INTEGER_ARRAYS = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
  "Uint16Array", "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"];
const DIGESTS = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
const constructing = Symbol("constructing");

function callHost(op, arg, data) {
  const reply = JSONParse(hostCrypto(op, arg, data));
  if (hasOwn(reply, "error")) throw new DOMExceptionCtor(reply.error, reply.name);
  return reply.ok;
}

// The bytes a BufferSource views, as a Uint8Array over the same memory.
function bufferSourceBytes(data) {
  if (isTypedArray(data)) {
    return new Uint8ArrayCtor(typedArrayBuffer(data), typedArrayByteOffset(data),
      typedArrayByteLength(data));
  }
  if (isDataView(data)) {
    return new Uint8ArrayCtor(dataViewBuffer(data), dataViewByteOffset(data),
      dataViewByteLength(data));
  }
  if (isArrayBuffer(data)) return new Uint8ArrayCtor(data);
  throw new TypeErrorCtor("Failed to execute 'digest' on 'SubtleCrypto': The provided value " +
    "is not of type '(ArrayBuffer or ArrayBufferView)'.");
}

function digestName(algorithm) {
  const name = typeof algorithm === "string" ? algorithm
    : algorithm !== null && typeof algorithm === "object" ? algorithm.name : undefined;
  if (typeof name !== "string") {
    throw new TypeErrorCtor("Failed to execute 'digest' on 'SubtleCrypto': " +
      "Algorithm: name is missing or not a string.");
  }
  const upper = toUpperCase(name);
  if (!arrayIncludes(DIGESTS, upper)) {
    throw new DOMExceptionCtor(`Unrecognized algorithm name: ${name}`, "NotSupportedError");
  }
  return upper;
}

class SubtleCrypto {
  constructor(key) {
    if (key !== constructing) throw new TypeErrorCtor("Illegal constructor");
  }

  async digest(algorithm, data) {
    if (!(this instanceof SubtleCrypto)) throw new TypeErrorCtor("Illegal invocation");
    const name = digestName(algorithm);
    const bytes = bufferSourceBytes(data);
    if (typedArrayByteLength(bytes) > MAX_DIGEST_BYTES) {
      throw new DOMExceptionCtor(`crypto.subtle.digest() takes at most ${MAX_DIGEST_BYTES} ` +
        `bytes (64 MiB) here; got ${typedArrayByteLength(bytes)}`, "QuotaExceededError");
    }
    return typedArrayBuffer(fromBase64(callHost("digest", name, toBase64(bytes))));
  }
}

const subtle = new SubtleCrypto(constructing);

class Crypto {
  constructor(key) {
    if (key !== constructing) throw new TypeErrorCtor("Illegal constructor");
  }

  get subtle() {
    if (!(this instanceof Crypto)) throw new TypeErrorCtor("Illegal invocation");
    return subtle;
  }

  getRandomValues(array) {
    if (!(this instanceof Crypto)) throw new TypeErrorCtor("Illegal invocation");
    if (!isTypedArray(array) && !isDataView(array)) {
      throw new TypeErrorCtor("Failed to execute 'getRandomValues' on 'Crypto': " +
        "parameter 1 is not of type 'ArrayBufferView'.");
    }
    if (!isTypedArray(array) || !arrayIncludes(INTEGER_ARRAYS, typedArrayTag(array))) {
      throw new DOMExceptionCtor("The data argument must be an integer-type TypedArray",
        "TypeMismatchError");
    }
    const length = typedArrayByteLength(array);
    if (length > MAX_RANDOM_BYTES) {
      throw new DOMExceptionCtor(`The ArrayBufferView's byte length (${length}) exceeds the ` +
        `number of bytes of entropy available via this API (${MAX_RANDOM_BYTES})`,
        "QuotaExceededError");
    }
    if (length !== 0) {
      const view = new Uint8ArrayCtor(typedArrayBuffer(array), typedArrayByteOffset(array), length);
      typedArraySet(view, fromBase64(callHost("random", length, "")));
    }
    return array;
  }

  randomUUID() {
    if (!(this instanceof Crypto)) throw new TypeErrorCtor("Illegal invocation");
    return callHost("uuid", "", "");
  }
}

for (const [ctor, tag] of [[Crypto, "Crypto"], [SubtleCrypto, "SubtleCrypto"]]) {
  defineProperty(ctor.prototype, SymbolToStringTag, { value: tag, configurable: true });
}
defineGlobal("Crypto", Crypto);
defineGlobal("SubtleCrypto", SubtleCrypto);
defineGlobal("crypto", new Crypto(constructing));
