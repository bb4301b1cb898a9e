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
//     (no holes, no accessors, no symbol keys, no cycles) made of those, whose
//     JSON text is at most 64 KiB. undefined and null have json null.
//   - exception(): for an Error, message is `Name: message` (Error.prototype
//     .toString), name its name, stack what Node would print for it (the
//     message line, the frames, then any extra properties or cause). Anything
//     else thrown gives only message, `Uncaught ` and the value inspected, as
//     the Node REPL prints it (`Uncaught 42`, `Uncaught { a: 1 }`).
//   - Text handed to the host never holds NUL or lone surrogates (the binding
//     cuts strings at NUL and refuses lone surrogates); both become U+FFFD.

// -- describe / exception / settle ------------------------------------------
const MAX_JSON_TEXT = 64 * 1024;

// Whether JSON.parse(JSON.stringify(value)) gives the same value back, and
// the text stays under `state.budget` characters (counted roughly).
function isPlainData(value, state) {
  if (--state.budget < 0) return false;
  switch (typeof value) {
    case "string": // a lone surrogate has no UTF-8 form, so no JSON text outside JS
      state.budget -= value.length;
      return state.budget >= 0 && isWellFormed(value);
    case "boolean":
      return state.budget >= 0;
    case "number":
      return value === value && value !== Infinity && value !== -Infinity && !ObjectIs(value, -0);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (arrayIncludes(state.stack, value)) return false;
  push(state.stack, value);
  const plain = isArray(value) ? isPlainArray(value, state) : isPlainObject(value, state);
  pop(state.stack);
  return plain;
}

function isPlainArray(value, state) {
  if (getPrototypeOf(value) !== ArrayPrototype || value.length > state.budget ||
      ReflectOwnKeys(value).length !== value.length + 1) {
    return false; // too long, holes, or properties besides the items and `length`
  }
  for (let i = 0; i < value.length; i++) {
    if (!isPlainProperty(getOwnPropertyDescriptor(value, i), state)) return false;
  }
  return true;
}

function isPlainObject(value, state) {
  if (getPrototypeOf(value) !== ObjectPrototype || isError(value)) return false;
  for (const key of ReflectOwnKeys(value)) {
    if (typeof key !== "string") return false;
    state.budget -= key.length;
    if (!isPlainProperty(getOwnPropertyDescriptor(value, key), state)) return false;
  }
  return true;
}

const isPlainProperty = (desc, state) => desc !== undefined && desc.enumerable &&
  "value" in desc && isPlainData(desc.value, state);

function jsonText(value) {
  if (value === undefined || value === null) return "null";
  try {
    if (!isPlainData(value, { stack: [], budget: MAX_JSON_TEXT })) return undefined;
    const text = JSONStringify(value);
    return text.length <= MAX_JSON_TEXT ? text : undefined;
  } catch {
    return undefined; // too deep to check, or a proxy that throws
  }
}

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
  value: freeze({ describe, exception, settle, inspect, format }),
  writable: false, configurable: false, enumerable: false,
});
