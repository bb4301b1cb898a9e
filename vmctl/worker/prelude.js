// vmctl prelude: evaluated once into every new context, before libraries.
//
// The prelude is one strict function body, so that its parts share the built-ins captured
// in intrinsics.js and user code reaches none of it but what it publishes (below). It is
// kept in files with one job each, which the worker joins in this order and evaluates as
// `(function () { "use strict"; ... })()` (session.PRELUDE_FILES):
//   intrinsics.js  built-ins captured before user code runs; what a value is
//   inspect.js     Node's util.inspect
//   errors.js      how an error reads (header, stack)
//   layout.js      line breaking and column widths for inspect and console.table
//   format.js      Node's util.format
//   console.js     the console object, over the host's console callable
//   timers.js      setTimeout and friends, and the timer queue the event loop runs
//   prelude.js     describe, exception and settle, and what the prelude publishes
//
// Interface (fixed; the worker's Python side relies on it):
//   host provides  globalThis.__vmctl_host_console(level, text)  (a Python callable)
//   this defines   globalThis.__vmctl, non-enumerable, with
//     describe(value)     -> JSON text {"type", "preview", "json"?}
//     exception(thrown)   -> JSON text {"message", "name"?, "stack"?}
//   and installs   globalThis.console
//
// Additions (used by the runtime and tests):
//     settle(completion) -> a promise of {value}, the same shape an async
//         snippet's completion has: a thenable completion is adopted (the
//         snippet's value is what it resolves to; a rejection rejects), any
//         other value is boxed as is. The runtime calls it on the completion
//         value of a snippet compiled with is_async false, then treats the
//         result like an async snippet's promise.
//     inspect(value, options) -> text, Node's util.inspect (options: depth,
//         showHidden, breakLength, compact, maxArrayLength, maxStringLength).
//     format(...args) -> text, Node's util.format.
//     timers.step() -> runs the earliest due timer and returns 0, or returns the
//         milliseconds until one is due, or -1 when none is pending (timers.js).
//     timers.clear() -> drops every pending timer (when an execution fails).
//
// What the text looks like follows Node's util.inspect and util.format (default
// options: depth 2, breakLength 80, compact 3, 100 array items, 10000 string
// characters), re-implemented here for QuickJS. Where QuickJS cannot tell what
// Node can (a promise's state, a proxy's target, an iterator's entries), the
// text says so: `Promise { <unknown> }`. Choices the contract leaves open:
//   - describe(): a top-level string is bare (as console.log prints it) but cut
//     after 10000 characters; `type` is one of number, string, boolean,
//     undefined, null, bigint, symbol, function (classes too), array, date,
//     map, set, error, promise, regexp or object; `json` is present when the
//     value survives JSON.stringify/JSON.parse unchanged: null, booleans,
//     well-formed strings, finite numbers other than -0, and plain objects and arrays
//     (no holes, no accessors, no symbol keys, no cycles) made of those, nested at
//     most 64 deep, whose JSON text is at most 64 KiB. The prelude writes that text
//     itself: no toJSON runs. undefined and null have json null.
//   - exception(): for an Error, message is `Name: message` (Error.prototype
//     .toString), name its name, stack what Node would print for it (the
//     message line, the frames, then any extra properties or cause). Anything
//     else thrown gives only message, `Uncaught ` and the value inspected, as
//     the Node REPL prints it (`Uncaught 42`, `Uncaught { a: 1 }`).
//   - Text handed to the host never holds NUL or lone surrogates (the binding
//     cuts strings at NUL and refuses lone surrogates); both become U+FFFD.

// -- describe / exception / settle ------------------------------------------
const MAX_JSON_TEXT = 64 * 1024;
// How deeply `json` may nest arrays and objects (each is one level). The supervisor
// refuses a deeper value as a protocol violation (MAX_VALUE_DEPTH, vmctl/protocol/frames.py),
// and every JSON encoder on the way to a client stays far from its recursion limit.
const MAX_JSON_DEPTH = 64;

// The JSON text of `value` when JSON.parse would give the same value back and the text
// stays under MAX_JSON_TEXT characters and MAX_JSON_DEPTH levels; else undefined. The
// text is written here from each property read once, not by JSON.stringify: no toJSON
// (an inherited one included) runs, and a proxy that answers differently the second time
// cannot make the text differ from what was checked.
function jsonText(value) {
  if (value === undefined || value === null) return "null";
  const state = { stack: [], budget: MAX_JSON_TEXT, parts: [] };
  try {
    if (!writePlain(value, state)) return undefined;
  } catch {
    return undefined; // a proxy that throws, or no stack left
  }
  const text = join(state.parts, "");
  return text.length <= MAX_JSON_TEXT ? text : undefined;
}

// Append the JSON of `value` to state.parts, if it is plain data (see describe below);
// `state.budget` counts characters roughly.
function writePlain(value, state) {
  if (--state.budget < 0) return false;
  switch (typeof value) {
    case "string": // a lone surrogate has no UTF-8 form, so no JSON text outside JS
      if (!isWellFormed(value)) return false;
      return writeText(JSONStringify(value), state); // a primitive: no toJSON is looked up
    case "boolean":
      return writeText(value ? "true" : "false", state);
    case "number":
      if (value !== value || value === Infinity || value === -Infinity || ObjectIs(value, -0)) {
        return false;
      }
      return writeText(JSONStringify(value), state);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return writeText("null", state);
  if (state.stack.length >= MAX_JSON_DEPTH || arrayIncludes(state.stack, value)) return false;
  push(state.stack, value);
  const plain = isArray(value) ? writeArray(value, state) : writeObject(value, state);
  pop(state.stack);
  return plain;
}

function writeText(text, state) {
  state.budget -= text.length;
  push(state.parts, text);
  return state.budget >= 0;
}

function writeArray(value, state) {
  if (getPrototypeOf(value) !== ArrayPrototype) return false;
  const length = value.length;
  if (typeof length !== "number" || length > state.budget ||
      ReflectOwnKeys(value).length !== length + 1) {
    return false; // too long, holes, or properties besides the items and `length`
  }
  push(state.parts, "[");
  for (let i = 0; i < length; i++) {
    if (i !== 0) push(state.parts, ",");
    if (!writeProperty(getOwnPropertyDescriptor(value, i), state)) return false;
  }
  push(state.parts, "]");
  return true;
}

function writeObject(value, state) {
  if (getPrototypeOf(value) !== ObjectPrototype || isError(value)) return false;
  const keys = ReflectOwnKeys(value);
  push(state.parts, "{");
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (typeof key !== "string") return false;
    if (i !== 0) push(state.parts, ",");
    if (!writeText(JSONStringify(key), state)) return false;
    push(state.parts, ":");
    if (!writeProperty(getOwnPropertyDescriptor(value, key), state)) return false;
  }
  push(state.parts, "}");
  return true;
}

// Only an enumerable data property is plain (`hasOwn`: the descriptor's prototype is
// Object.prototype, where user code may have put a `value`).
const writeProperty = (desc, state) => desc !== undefined && desc.enumerable &&
  hasOwn(desc, "value") && writePlain(desc.value, state);

function preview(value) {
  if (typeof value !== "string") return inspect(value);
  if (value.length <= defaults.maxStringLength) return value;
  const remaining = value.length - defaults.maxStringLength;
  return `${slice(value, 0, defaults.maxStringLength)}... ${plural(remaining, "more character")}`;
}

function describe(value) {
  let type;
  let text;
  try {
    type = typeName(value);
    text = preview(value);
  } catch (err) {
    type = type || "object";
    text = `[inspection failed: ${safeMessage(err)}]`;
  }
  const json = jsonText(value);
  return `{"type":${JSONStringify(type)},"preview":${JSONStringify(text)}${
    json === undefined ? "" : `,"json":${json}`}}`;
}

function safeMessage(err) {
  try {
    return isError(err) ? errorHeader(err) : String(err);
  } catch {
    return "unknown error";
  }
}

function exception(thrown) {
  try {
    if (thrown !== null && typeof thrown === "object" && isError(thrown)) {
      const name = thrown.name != null ? String(thrown.name) : "Error";
      return JSONStringify({ message: errorHeader(thrown), name, stack: inspect(thrown) });
    }
    return JSONStringify({ message: `Uncaught ${inspect(thrown)}` });
  } catch (err) {
    return JSONStringify({ message: `Uncaught exception that could not be inspected (${safeMessage(err)})` });
  }
}

// A promise of {value} for a snippet's completion value: a thenable is
// adopted (its rejection rejects), anything else is the value itself.
function settle(completion) {
  return promiseThen(promiseResolve(completion), (value) => ({ value }));
}

defineProperty(globalThis, "console", {
  value: console, writable: true, configurable: true, enumerable: false,
});
defineProperty(globalThis, "__vmctl", {
  value: freeze({
    describe, exception, settle, inspect, format,
    timers: freeze({ step: timerStep, clear: clearTimers }),
  }),
  writable: false, configurable: false, enumerable: false,
});
