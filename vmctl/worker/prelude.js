// vmctl prelude: evaluated once into every new context, before libraries.
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
(function () {
  "use strict";
  const host = globalThis.__vmctl_host_console;
  delete globalThis.__vmctl_host_console;

  // -- intrinsics, captured before user code can replace them ---------------
  const uncurry = (fn) => (self, ...args) => Reflect.apply(fn, self, args);
  const ReflectApply = Reflect.apply;
  const ReflectOwnKeys = Reflect.ownKeys;
  const { keys: ObjectKeys, getOwnPropertyNames, getOwnPropertySymbols,
    getOwnPropertyDescriptor, getPrototypeOf, defineProperty, is: ObjectIs,
    freeze } = Object;
  const hasOwn = Object.hasOwn;
  const isEnumerable = uncurry(Object.prototype.propertyIsEnumerable);
  const objectToString = uncurry(Object.prototype.toString);
  const ObjectPrototype = Object.prototype;
  const ArrayPrototype = Array.prototype;
  const isArray = Array.isArray;
  const push = uncurry(ArrayPrototype.push);
  const join = uncurry(ArrayPrototype.join);
  const arrayIncludes = uncurry(ArrayPrototype.includes);
  const arrayIndexOf = uncurry(ArrayPrototype.indexOf);
  const splice = uncurry(ArrayPrototype.splice);
  const unshift = uncurry(ArrayPrototype.unshift);
  const pop = uncurry(ArrayPrototype.pop);
  const slice = uncurry(String.prototype.slice);
  const includes = uncurry(String.prototype.includes);
  const indexOf = uncurry(String.prototype.indexOf);
  const startsWith = uncurry(String.prototype.startsWith);
  const endsWith = uncurry(String.prototype.endsWith);
  const repeat = uncurry(String.prototype.repeat);
  const padStart = uncurry(String.prototype.padStart);
  const padEnd = uncurry(String.prototype.padEnd);
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const codePointAt = uncurry(String.prototype.codePointAt);
  const split = uncurry(String.prototype.split);
  const replaceAll = uncurry(String.prototype.replaceAll);
  const trimEnd = uncurry(String.prototype.trimEnd);
  const toWellFormed = uncurry(String.prototype.toWellFormed);
  const isWellFormed = uncurry(String.prototype.isWellFormed);
  const numberToString = uncurry(Number.prototype.toString);
  const toFixed = uncurry(Number.prototype.toFixed);
  const regexpExec = uncurry(RegExp.prototype.exec);
  const regexpToString = uncurry(RegExp.prototype.toString);
  const functionToString = uncurry(Function.prototype.toString);
  const symbolToString = uncurry(Symbol.prototype.toString);
  const dateToISOString = uncurry(Date.prototype.toISOString);
  const dateGetTime = uncurry(Date.prototype.getTime);
  const errorToString = uncurry(Error.prototype.toString);
  const JSONStringify = JSON.stringify;
  const { floor, max, min, round, sqrt } = Math;
  const MapCtor = Map;
  const mapGet = uncurry(Map.prototype.get);
  const mapSet = uncurry(Map.prototype.set);
  const mapHas = uncurry(Map.prototype.has);
  const mapDelete = uncurry(Map.prototype.delete);
  const mapEntries = uncurry(Map.prototype.entries);
  const setValues = uncurry(Set.prototype.values);
  const mapSize = uncurry(getOwnPropertyDescriptor(Map.prototype, "size").get);
  const setSize = uncurry(getOwnPropertyDescriptor(Set.prototype, "size").get);
  const setIteratorNext = uncurry(getPrototypeOf(new Set().values()).next);
  const mapIteratorNext = uncurry(getPrototypeOf(new Map().entries()).next);
  const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, Symbol.toStringTag).get);
  const typedArrayLength = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, "length").get);
  const arrayBufferByteLength = uncurry(getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get);
  const sharedByteLength = uncurry(getOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength").get);
  const dataViewByteLength = uncurry(getOwnPropertyDescriptor(DataView.prototype, "byteLength").get);
  const regexpSource = uncurry(getOwnPropertyDescriptor(RegExp.prototype, "source").get);
  const weakMapHas = uncurry(WeakMap.prototype.has);
  const weakSetHas = uncurry(WeakSet.prototype.has);
  const PromiseCtor = Promise;
  const promiseResolve = (value) => Reflect.apply(Promise.resolve, PromiseCtor, [value]);
  const promiseThen = uncurry(Promise.prototype.then);
  const isNativeError = Error.isError;
  const captureStackTrace = Error.captureStackTrace;
  const now = performance.now.bind(performance);
  const Uint8ArrayCtor = Uint8Array;
  const uint8Join = uncurry(Uint8Array.prototype.join);
  const customInspect = Symbol.for("nodejs.util.inspect.custom");
  const boxes = [
    ["Number", Number.prototype.valueOf], ["String", String.prototype.valueOf],
    ["Boolean", Boolean.prototype.valueOf], ["BigInt", BigInt.prototype.valueOf],
    ["Symbol", Symbol.prototype.valueOf],
  ];
  const functionKinds = new MapCtor([
    [getPrototypeOf(async function () {}), "AsyncFunction"],
    [getPrototypeOf(function* () {}), "GeneratorFunction"],
    [getPrototypeOf(async function* () {}), "AsyncGeneratorFunction"],
  ]);
  const builtInObjects = new MapCtor();
  for (const name of getOwnPropertyNames(globalThis)) {
    if (regexpExec(/^[A-Z][a-zA-Z0-9]+$/, name) !== null) mapSet(builtInObjects, name, true);
  }

  // -- what a value is (brand checks: a toStringTag cannot fake these) ------
  function brand(check, value) {
    try {
      check(value);
      return true;
    } catch {
      return false;
    }
  }
  const isMap = (v) => brand(mapSize, v);
  const isSet = (v) => brand(setSize, v);
  const isDate = (v) => brand(dateGetTime, v);
  const isRegExp = (v) => v !== RegExp.prototype && brand(regexpSource, v);
  const isTypedArray = (v) => typedArrayTag(v) !== undefined;
  const isArrayBuffer = (v) => brand(arrayBufferByteLength, v);
  const isSharedArrayBuffer = (v) => brand(sharedByteLength, v);
  const isDataView = (v) => brand(dataViewByteLength, v);
  const isWeakMap = (v) => brand((x) => weakMapHas(x, ObjectPrototype), v);
  const isWeakSet = (v) => brand((x) => weakSetHas(x, ObjectPrototype), v);
  const isPromise = (v) => v instanceof PromiseCtor || objectToString(v) === "[object Promise]";
  const isError = (v) => isNativeError(v) || v instanceof Error;
  const isArguments = (v) => objectToString(v) === "[object Arguments]";
  function boxedType(v) {
    for (const [type, valueOf] of boxes) {
      if (brand((x) => ReflectApply(valueOf, x, []), v)) return [type, ReflectApply(valueOf, v, [])];
    }
    return undefined;
  }

  function typeName(v) {
    if (v === null) return "null";
    const type = typeof v;
    if (type !== "object") return type;
    if (isArray(v)) return "array";
    if (isError(v)) return "error";
    if (isDate(v)) return "date";
    if (isMap(v)) return "map";
    if (isSet(v)) return "set";
    if (isPromise(v)) return "promise";
    if (isRegExp(v)) return "regexp";
    return "object";
  }

  // -- strings ---------------------------------------------------------------
  const kObjectType = 0;
  const kArrayType = 1;
  const kArrayExtrasType = 2;
  const keyStrRegExp = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const numberRegExp = /^(0|[1-9][0-9]*)$/;
  const needsEscape = /[\x00-\x1f\x27\x5c\x7f-\x9f\ud800-\udfff]/;

  function escapeChar(code) {
    switch (code) {
      case 8: return "\\b";
      case 9: return "\\t";
      case 10: return "\\n";
      case 12: return "\\f";
      case 13: return "\\r";
      case 39: return "\\'";
      case 92: return "\\\\";
      default:
        if (code >= 0xd800) return "\\u" + numberToString(code, 16);
        return "\\x" + padStart(numberToString(code, 16).toUpperCase(), 2, "0");
    }
  }

  // Quote a string the way Node does: single quotes, or double quotes or
  // backticks when that avoids escaping a quote; control characters escaped.
  function quote(str) {
    let quoteChar = "'";
    if (includes(str, "'")) {
      if (!includes(str, '"')) quoteChar = '"';
      else if (!includes(str, "`") && !includes(str, "${")) quoteChar = "`";
    }
    return quoteChar + escape(str, quoteChar === "'") + quoteChar;
  }

  function escape(str, escapeSingleQuote) {
    if (regexpExec(needsEscape, str) === null) return str;
    let result = "";
    let last = 0;
    for (let i = 0; i < str.length; i++) {
      const code = charCodeAt(str, i);
      if ((code === 39 && escapeSingleQuote) || code === 92 || code < 32 || (code > 126 && code < 160)) {
        result += slice(str, last, i) + escapeChar(code);
        last = i + 1;
      } else if (code >= 0xd800 && code <= 0xdfff) {
        if (code <= 0xdbff && i + 1 < str.length) {
          const next = charCodeAt(str, i + 1);
          if (next >= 0xdc00 && next <= 0xdfff) {
            i++;
            continue;
          }
        }
        result += slice(str, last, i) + escapeChar(code);
        last = i + 1;
      }
    }
    return result + slice(str, last);
  }

  const plural = (n, word) => `${n} ${word}${n > 1 ? "s" : ""}`;
  const remainingText = (n) => `... ${plural(n, "more item")}`;

  // -- inspect: Node's util.inspect -----------------------------------------
  const defaults = freeze({
    depth: 2, showHidden: false, breakLength: 80, compact: 3,
    maxArrayLength: 100, maxStringLength: 10000, customInspect: true,
  });

  function inspect(value, options) {
    const ctx = {
      seen: [], circular: undefined, seenRefs: undefined, indentationLvl: 0, currentDepth: 0,
      depth: defaults.depth, showHidden: defaults.showHidden, breakLength: defaults.breakLength,
      compact: defaults.compact, maxArrayLength: defaults.maxArrayLength,
      maxStringLength: defaults.maxStringLength, customInspect: defaults.customInspect,
    };
    if (options !== null && typeof options === "object") {
      for (const key of ObjectKeys(defaults)) {
        if (options[key] !== undefined) ctx[key] = options[key];
      }
    }
    if (ctx.depth === null) ctx.depth = Infinity;
    if (ctx.maxArrayLength === null) ctx.maxArrayLength = Infinity;
    if (ctx.maxStringLength === null) ctx.maxStringLength = Infinity;
    return formatValue(ctx, value, 0);
  }

  function formatValue(ctx, value, recurseTimes, inTypedArray) {
    if (typeof value !== "object" && typeof value !== "function") {
      return formatPrimitive(ctx, value);
    }
    if (value === null) return "null";
    if (ctx.customInspect) {
      const custom = value[customInspect];
      if (typeof custom === "function" && custom !== inspect &&
          !(value.constructor && value.constructor.prototype === value)) {
        const depth = ctx.depth - recurseTimes;
        const options = { depth, breakLength: ctx.breakLength, compact: ctx.compact };
        const result = ReflectApply(custom, value, [depth, options, inspect]);
        if (result !== value) {
          if (typeof result !== "string") return formatValue(ctx, result, recurseTimes);
          return replaceAll(result, "\n", "\n" + repeat(" ", ctx.indentationLvl));
        }
      }
    }
    if (arrayIncludes(ctx.seen, value)) {
      if (ctx.circular === undefined) ctx.circular = new MapCtor();
      let index = mapGet(ctx.circular, value);
      if (index === undefined) {
        index = mapSize(ctx.circular) + 1;
        mapSet(ctx.circular, value, index);
      }
      return `[Circular *${index}]`;
    }
    return formatRaw(ctx, value, recurseTimes, inTypedArray);
  }

  function formatPrimitive(ctx, value) {
    switch (typeof value) {
      case "string": {
        let trailer = "";
        if (value.length > ctx.maxStringLength) {
          const remaining = value.length - ctx.maxStringLength;
          value = slice(value, 0, ctx.maxStringLength);
          trailer = `... ${plural(remaining, "more character")}`;
        }
        // Long strings with line breaks are shown one line per piece.
        if (ctx.compact !== true && value.length > 16 &&
            value.length > ctx.breakLength - ctx.indentationLvl - 4) {
          const pieces = [];
          let start = 0;
          for (let i = indexOf(value, "\n"); i !== -1; i = indexOf(value, "\n", start)) {
            push(pieces, quote(slice(value, start, i + 1)));
            start = i + 1;
          }
          if (start < value.length || pieces.length === 0) push(pieces, quote(slice(value, start)));
          return join(pieces, ` +\n${repeat(" ", ctx.indentationLvl + 2)}`) + trailer;
        }
        return quote(value) + trailer;
      }
      case "number": return formatNumber(value);
      case "bigint": return `${value}n`;
      case "boolean": return `${value}`;
      case "undefined": return "undefined";
      default: return symbolToString(value);
    }
  }

  const formatNumber = (n) => (ObjectIs(n, -0) ? "-0" : `${n}`);

  function getConstructorName(obj, ctx, recurseTimes) {
    let firstProto;
    const original = obj;
    while (obj !== null && obj !== undefined) {
      const descriptor = getOwnPropertyDescriptor(obj, "constructor");
      if (descriptor !== undefined && typeof descriptor.value === "function" &&
          descriptor.value.name !== "" && isInstance(original, descriptor.value)) {
        return String(descriptor.value.name);
      }
      obj = getPrototypeOf(obj);
      if (firstProto === undefined) firstProto = obj;
    }
    if (firstProto === null) return null;
    const fallback = internalClassName(original);
    if (recurseTimes > ctx.depth) return `${fallback} <Complex prototype>`;
    const protoName = getConstructorName(firstProto, ctx, recurseTimes + 1);
    if (protoName === null) {
      return `${fallback} <${inspect(firstProto, { depth: -1, customInspect: false })}>`;
    }
    return `${fallback} <${protoName}>`;
  }

  function isInstance(value, ctor) {
    try {
      return value instanceof ctor;
    } catch {
      return false;
    }
  }

  function internalClassName(value) {
    const match = regexpExec(/^\[object (.*)\]$/, objectToString(value));
    return match === null ? "Object" : match[1];
  }

  function getPrefix(constructor, tag, fallback, size = "") {
    if (constructor === null) {
      if (tag !== "" && fallback !== tag) return `[${fallback}${size}: null prototype] [${tag}] `;
      return `[${fallback}${size}: null prototype] `;
    }
    if (tag !== "" && constructor !== tag) return `${constructor}${size} [${tag}] `;
    return `${constructor}${size} `;
  }

  function getKeys(value, showHidden) {
    const symbols = getOwnPropertySymbols(value);
    let keys;
    if (showHidden) {
      keys = getOwnPropertyNames(value);
      for (const symbol of symbols) push(keys, symbol);
      return keys;
    }
    try {
      keys = ObjectKeys(value);
    } catch {
      keys = getOwnPropertyNames(value); // an uninitialised module namespace
    }
    for (const symbol of symbols) {
      if (isEnumerable(value, symbol)) push(keys, symbol);
    }
    return keys;
  }

  // The keys of an array besides its items. Own keys list the indices first, in
  // order, so the others are found from the end (a million items stay cheap).
  function getNonIndexKeys(value, showHidden) {
    const all = ReflectOwnKeys(value);
    let first = all.length;
    while (first > 0 && !isIndex(all[first - 1])) first--;
    const keys = [];
    for (let i = first; i < all.length; i++) {
      if (showHidden || isEnumerable(value, all[i])) push(keys, all[i]);
    }
    return keys;
  }

  const isIndex = (key) => typeof key === "string" && regexpExec(numberRegExp, key) !== null &&
    +key < 2 ** 32 - 1;

  function getCtxStyle(value, constructor, tag) {
    let fallback = "";
    if (constructor === null) {
      fallback = internalClassName(value);
      if (fallback === tag) fallback = "Object";
    }
    return getPrefix(constructor, tag, fallback);
  }

  function formatRaw(ctx, value, recurseTimes, inTypedArray) {
    const constructor = getConstructorName(value, ctx, recurseTimes);
    let tag = value[Symbol.toStringTag];
    // Only list the tag when it is not already shown as an own property.
    if (typeof tag !== "string" || (tag !== "" &&
        (ctx.showHidden ? hasOwn(value, Symbol.toStringTag) : isEnumerable(value, Symbol.toStringTag)))) {
      tag = "";
    }
    let base = "";
    let formatter = () => [];
    let braces;
    let keys;
    let extrasType = kObjectType;
    let boxed;

    if (isArray(value)) {
      const prefix = constructor !== "Array" || tag !== ""
        ? getPrefix(constructor, tag, "Array", `(${value.length})`) : "";
      keys = getNonIndexKeys(value, ctx.showHidden);
      braces = [`${prefix}[`, "]"];
      if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
      extrasType = kArrayExtrasType;
      formatter = formatArray;
    } else if (isSet(value)) {
      const size = setSize(value);
      const prefix = getPrefix(constructor, tag, "Set", `(${size})`);
      keys = getKeys(value, ctx.showHidden);
      formatter = formatSet;
      if (size === 0 && keys.length === 0) return `${prefix}{}`;
      braces = [`${prefix}{`, "}"];
    } else if (isMap(value)) {
      const size = mapSize(value);
      const prefix = getPrefix(constructor, tag, "Map", `(${size})`);
      keys = getKeys(value, ctx.showHidden);
      formatter = formatMap;
      if (size === 0 && keys.length === 0) return `${prefix}{}`;
      braces = [`${prefix}{`, "}"];
    } else if (isTypedArray(value)) {
      keys = getNonIndexKeys(value, ctx.showHidden);
      const size = typedArrayLength(value);
      const prefix = getPrefix(constructor, tag, typedArrayTag(value), `(${size})`);
      braces = [`${prefix}[`, "]"];
      if (size === 0 && keys.length === 0) return `${braces[0]}]`;
      formatter = formatTypedArray;
      extrasType = kArrayExtrasType;
    } else {
      keys = getKeys(value, ctx.showHidden);
      braces = ["{", "}"];
      if (typeof value === "function") {
        base = getFunctionBase(value, constructor, tag);
        if (keys.length === 0) return base;
      } else if (constructor === "Object") {
        if (isArguments(value)) braces[0] = "[Arguments] {";
        else if (tag !== "") braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
        if (keys.length === 0) return `${braces[0]}}`;
      } else if (isRegExp(value)) {
        base = regexpToString(constructor !== null ? value : new RegExp(value));
        const prefix = getPrefix(constructor, tag, "RegExp");
        if (prefix !== "RegExp ") base = `${prefix}${base}`;
        if (keys.length === 0 || recurseTimes > ctx.depth) return base;
      } else if (isDate(value)) {
        const time = dateGetTime(value);
        base = time !== time ? "Invalid Date" : dateToISOString(value);
        const prefix = getPrefix(constructor, tag, "Date");
        if (prefix !== "Date ") base = `${prefix}${base}`;
        if (keys.length === 0) return base;
      } else if (isError(value)) {
        base = formatError(value, constructor, tag, ctx, keys);
        if (keys.length === 0) return base;
      } else if (isArrayBuffer(value) || isSharedArrayBuffer(value)) {
        const prefix = getPrefix(constructor, tag, isArrayBuffer(value) ? "ArrayBuffer" : "SharedArrayBuffer");
        if (inTypedArray) {
          if (keys.length === 0) return `${prefix}{ byteLength: ${formatNumber(value.byteLength)} }`;
        } else {
          formatter = formatArrayBuffer;
        }
        braces[0] = `${prefix}{`;
        unshift(keys, "byteLength");
      } else if (isDataView(value)) {
        braces[0] = `${getPrefix(constructor, tag, "DataView")}{`;
        unshift(keys, "byteLength", "byteOffset", "buffer");
      } else if (isPromise(value)) {
        braces[0] = `${getPrefix(constructor, tag, "Promise")}{`;
        // QuickJS offers no way to read a promise's state from JavaScript.
        formatter = () => ["<unknown>"];
      } else if (isWeakSet(value) || isWeakMap(value)) {
        braces[0] = `${getPrefix(constructor, tag, isWeakSet(value) ? "WeakSet" : "WeakMap")}{`;
        formatter = () => ["<items unknown>"];
      } else if ((boxed = boxedType(value)) !== undefined) {
        base = getBoxedBase(value, ctx, keys, constructor, tag, boxed);
        if (keys.length === 0) return base;
      } else {
        if (keys.length === 0) return `${getCtxStyle(value, constructor, tag)}{}`;
        braces[0] = `${getCtxStyle(value, constructor, tag)}{`;
      }
    }

    if (recurseTimes > ctx.depth) {
      let name = slice(getCtxStyle(value, constructor, tag), 0, -1);
      if (constructor !== null) name = `[${name}]`;
      return name;
    }
    recurseTimes += 1;
    push(ctx.seen, value);
    ctx.currentDepth = recurseTimes;
    const output = formatter(ctx, value, recurseTimes);
    for (const key of keys) push(output, formatProperty(ctx, value, recurseTimes, key, extrasType));
    if (ctx.circular !== undefined) {
      const index = mapGet(ctx.circular, value);
      if (index !== undefined) {
        if (ctx.seenRefs === undefined) ctx.seenRefs = new MapCtor();
        if (!mapHas(ctx.seenRefs, index)) {
          mapSet(ctx.seenRefs, index, true);
          const reference = `<ref *${index}>`;
          base = base === "" ? reference : `${reference} ${base}`;
        }
      }
    }
    pop(ctx.seen);
    return reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
  }

  function getBoxedBase(value, ctx, keys, constructor, tag, [type, primitive]) {
    if (type === "String") splice(keys, 0, value.length); // the indices repeat the string
    let base = `[${type}`;
    if (type !== constructor) base += constructor === null ? " (null prototype)" : ` (${constructor})`;
    base += `: ${formatPrimitive({ ...defaults, indentationLvl: 0, compact: true }, primitive)}]`;
    if (tag !== "" && tag !== constructor) base += ` [${tag}]`;
    return base;
  }

  function isClass(fn) {
    let source;
    try {
      source = functionToString(fn);
    } catch {
      return false;
    }
    return startsWith(source, "class") && endsWith(source, "}");
  }

  function getFunctionBase(value, constructor, tag) {
    if (isClass(value)) {
      const name = (hasOwn(value, "name") && value.name) || "(anonymous)";
      let base = `class ${name}`;
      if (constructor !== "Function" && constructor !== null) base += ` [${constructor}]`;
      if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
      if (constructor !== null) {
        const superName = getPrototypeOf(value).name;
        if (superName) base += ` extends ${superName}`;
      } else {
        base += " extends [null prototype]";
      }
      return `[${base}]`;
    }
    let type = "Function";
    for (let proto = getPrototypeOf(value); proto !== null; proto = getPrototypeOf(proto)) {
      const kind = mapGet(functionKinds, proto);
      if (kind !== undefined) {
        type = kind;
        break;
      }
    }
    let base = `[${type}`;
    if (constructor === null) base += " (null prototype)";
    base += value.name === "" || typeof value.name !== "string" ? " (anonymous)" : `: ${value.name}`;
    base += "]";
    if (constructor !== type && constructor !== null) base += ` ${constructor}`;
    if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
    return base;
  }

  // The text Node shows for an error: its stack, with the message line first.
  // QuickJS's `stack` holds only the frames, so the message line is added.
  function errorStack(err) {
    let frames;
    try {
      frames = err.stack;
    } catch {
      frames = undefined;
    }
    const header = errorHeader(err);
    if (typeof frames !== "string" || frames === "") return header;
    frames = trimEnd(frames);
    if (startsWith(frames, "    at ")) return `${header}\n${frames}`;
    return frames; // a stack someone set by hand, already complete
  }

  function errorHeader(err) {
    try {
      return errorToString(err);
    } catch {
      return "Error";
    }
  }

  function formatError(err, constructor, tag, ctx, keys) {
    const name = err.name != null ? String(err.name) : "Error";
    let stack = errorStack(err);
    if (!ctx.showHidden && keys.length !== 0) {
      for (const key of ["name", "message", "stack"]) {
        const index = arrayIndexOf(keys, key);
        if (index !== -1 && includes(stack, err[key])) splice(keys, index, 1);
      }
    }
    if ("cause" in err && !arrayIncludes(keys, "cause")) push(keys, "cause");
    if (isArray(err.errors) && !arrayIncludes(keys, "errors")) push(keys, "errors");
    stack = improveStack(stack, constructor, name, tag);
    let position = (err.message && indexOf(stack, err.message)) || -1;
    if (position !== -1) position += err.message.length;
    if (indexOf(stack, "\n    at", position) === -1) stack = `[${stack}]`;
    if (ctx.indentationLvl !== 0) {
      stack = replaceAll(stack, "\n", `\n${repeat(" ", ctx.indentationLvl)}`);
    }
    return stack;
  }

  // Name the class in the first line when it differs from the error's name.
  function improveStack(stack, constructor, name, tag) {
    let length = name.length;
    if (constructor === null || (endsWith(name, "Error") && startsWith(stack, name) &&
        (stack.length === length || stack[length] === ":" || stack[length] === "\n"))) {
      let fallback = "Error";
      if (constructor === null) {
        const start = regexpExec(/^([A-Z][a-z_ A-Z0-9[\]()-]+)(?::|\n {4}at)/, stack) ||
          regexpExec(/^([a-z_A-Z0-9-]*Error)$/, stack);
        fallback = (start && start[1]) || "";
        length = fallback.length;
        fallback = fallback || "Error";
      }
      const prefix = slice(getPrefix(constructor, tag, fallback), 0, -1);
      if (name !== prefix) {
        if (includes(prefix, name)) {
          stack = length === 0 ? `${prefix}: ${stack}` : `${prefix}${slice(stack, length)}`;
        } else {
          stack = `${prefix} [${name}]${slice(stack, length)}`;
        }
      }
    }
    return stack;
  }

  function formatArray(ctx, value, recurseTimes) {
    const length = min(max(0, ctx.maxArrayLength), value.length);
    const output = [];
    for (let i = 0; i < length; i++) {
      if (!hasOwn(value, i)) return formatSparseArray(ctx, value, recurseTimes, length, output, i);
      push(output, formatProperty(ctx, value, recurseTimes, i, kArrayType));
    }
    if (value.length > length) push(output, remainingText(value.length - length));
    return output;
  }

  function formatSparseArray(ctx, value, recurseTimes, maxLength, output, i) {
    const keys = ObjectKeys(value);
    let index = i;
    for (; i < keys.length && output.length < maxLength; i++) {
      const key = keys[i];
      const number = +key;
      if (number > 2 ** 32 - 2) break;
      if (`${index}` !== key) {
        if (regexpExec(numberRegExp, key) === null) break;
        push(output, `<${plural(number - index, "empty item")}>`);
        index = number;
        if (output.length === maxLength) break;
      }
      push(output, formatProperty(ctx, value, recurseTimes, key, kArrayType));
      index++;
    }
    const remaining = value.length - index;
    if (output.length !== maxLength) {
      if (remaining > 0) push(output, `<${plural(remaining, "empty item")}>`);
    } else if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    return output;
  }

  function formatTypedArray(ctx, value) {
    const length = typedArrayLength(value);
    const shown = min(max(0, ctx.maxArrayLength), length);
    const output = [];
    for (let i = 0; i < shown; i++) push(output, formatPrimitive(ctx, value[i]));
    if (length > shown) push(output, remainingText(length - shown));
    return output;
  }

  function formatArrayBuffer(ctx, value) {
    let bytes;
    try {
      bytes = new Uint8ArrayCtor(value);
    } catch {
      return ["(detached)"];
    }
    const shown = min(ctx.maxArrayLength, bytes.length);
    const hex = [];
    for (let i = 0; i < shown; i++) push(hex, padStart(numberToString(bytes[i], 16), 2, "0"));
    let text = join(hex, " ");
    if (bytes.length > shown) text += ` ... ${plural(bytes.length - shown, "more byte")}`;
    return [`[Uint8Contents]: <${text}>`];
  }

  function formatSet(ctx, value, recurseTimes) {
    const output = [];
    const size = setSize(value);
    const shown = min(max(0, ctx.maxArrayLength), size);
    ctx.indentationLvl += 2;
    const iterator = setValues(value);
    for (let i = 0; i < shown; i++) push(output, formatValue(ctx, setIteratorNext(iterator).value, recurseTimes));
    if (size > shown) push(output, remainingText(size - shown));
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatMap(ctx, value, recurseTimes) {
    const output = [];
    const size = mapSize(value);
    const shown = min(max(0, ctx.maxArrayLength), size);
    ctx.indentationLvl += 2;
    const iterator = mapEntries(value);
    for (let i = 0; i < shown; i++) {
      const [k, v] = mapIteratorNext(iterator).value;
      push(output, `${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
    }
    if (size > shown) push(output, remainingText(size - shown));
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatProperty(ctx, value, recurseTimes, key, type) {
    let str;
    const desc = getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
    if (desc.value !== undefined) {
      ctx.indentationLvl += 2;
      str = formatValue(ctx, desc.value, recurseTimes, isTypedArray(value));
      ctx.indentationLvl -= 2;
    } else if (desc.get !== undefined) {
      str = desc.set !== undefined ? "[Getter/Setter]" : "[Getter]";
    } else if (desc.set !== undefined) {
      str = "[Setter]";
    } else {
      str = "undefined";
    }
    if (type === kArrayType) return str;
    let name;
    if (typeof key === "symbol") {
      name = `[${escape(symbolToString(key), true)}]`;
    } else if (key === "__proto__") {
      name = "['__proto__']";
    } else if (desc.enumerable === false) {
      name = `[${escape(key, true)}]`;
    } else if (regexpExec(keyStrRegExp, key) !== null) {
      name = key;
    } else {
      name = quote(key);
    }
    return `${name}: ${str}`;
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let totalLength = output.length + start;
    if (totalLength + output.length > ctx.breakLength) return false;
    for (const entry of output) {
      totalLength += entry.length;
      if (totalLength > ctx.breakLength) return false;
    }
    return base === "" || !includes(base, "\n");
  }

  // Node's rule: the innermost `compact` (3) levels go on one line when that
  // line fits in `breakLength`; otherwise one entry per line, indented by 2.
  function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
    if (ctx.compact !== true) {
      if (typeof ctx.compact === "number" && ctx.compact >= 1) {
        const entries = output.length;
        if (extrasType === kArrayExtrasType && entries > 6) {
          output = groupArrayElements(ctx, output, value);
        }
        if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
          const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
          if (isBelowBreakLength(ctx, output, start, base)) {
            const joined = join(output, ", ");
            if (!includes(joined, "\n")) {
              return `${base ? `${base} ` : ""}${braces[0]} ${joined} ${braces[1]}`;
            }
          }
        }
      }
      const indentation = `\n${repeat(" ", ctx.indentationLvl)}`;
      return `${base ? `${base} ` : ""}${braces[0]}${indentation}  ${
        join(output, `,${indentation}  `)}${indentation}${braces[1]}`;
    }
    if (isBelowBreakLength(ctx, output, 0, base)) {
      return `${braces[0]}${base ? ` ${base}` : ""} ${join(output, ", ")} ${braces[1]}`;
    }
    const indentation = repeat(" ", ctx.indentationLvl);
    const ln = base === "" && braces[0].length === 1 ? " " : `${base ? ` ${base}` : ""}\n${indentation}  `;
    return `${braces[0]}${ln}${join(output, `,\n${indentation}  `)} ${braces[1]}`;
  }

  // Node's column layout for arrays of more than six short entries.
  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) outputLength--; // the "... more items" entry
    const separatorSpace = 2;
    const dataLen = [];
    for (let i = 0; i < outputLength; i++) {
      const length = stringWidth(output[i]);
      dataLen[i] = length;
      totalLength += length + separatorSpace;
      if (maxLength < length) maxLength = length;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
        (totalLength / actualMax > 5 || maxLength <= 6)) {
      const averageBias = sqrt(actualMax - totalLength / output.length);
      const biasedMax = max(actualMax - 3 - averageBias, 1);
      const columns = min(
        round(sqrt(2.5 * biasedMax * outputLength) / biasedMax),
        floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15,
      );
      if (columns <= 1) return output;
      const grouped = [];
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < output.length; j += columns) {
          if (dataLen[j] > lineLength) lineLength = dataLen[j];
        }
        push(maxLineLength, lineLength + separatorSpace);
      }
      let order = padStart;
      if (value !== undefined) {
        for (let i = 0; i < output.length; i++) {
          if (typeof value[i] !== "number" && typeof value[i] !== "bigint") {
            order = padEnd;
            break;
          }
        }
      }
      for (let i = 0; i < outputLength; i += columns) {
        const last = min(i + columns, outputLength);
        let line = "";
        let j = i;
        for (; j < last - 1; j++) {
          const padding = maxLineLength[j - i] + output[j].length - dataLen[j];
          line += order(`${output[j]}, `, padding, " ");
        }
        if (order === padStart) {
          const padding = maxLineLength[j - i] + output[j].length - dataLen[j] - separatorSpace;
          line += padStart(output[j], padding, " ");
        } else {
          line += output[j];
        }
        push(grouped, line);
      }
      if (ctx.maxArrayLength < output.length) push(grouped, output[outputLength]);
      return grouped;
    }
    return output;
  }

  // Columns a string takes in a terminal: wide East Asian characters count
  // twice, combining marks and zero-width characters not at all.
  function stringWidth(str) {
    let width = 0;
    for (let i = 0; i < str.length; i++) {
      const code = codePointAt(str, i);
      if (code > 0xffff) i++;
      if (isZeroWidth(code)) continue;
      width += isFullWidth(code) ? 2 : 1;
    }
    return width;
  }

  const isZeroWidth = (code) => code <= 0x1f || (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x300 && code <= 0x36f) || (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x20d0 && code <= 0x20ff) || (code >= 0xfe00 && code <= 0xfe0f) ||
    (code >= 0xfe20 && code <= 0xfe2f) || (code >= 0xe0100 && code <= 0xe01ef);

  const isFullWidth = (code) => code >= 0x1100 && (code <= 0x115f || code === 0x2329 ||
    code === 0x232a || (code >= 0x2e80 && code <= 0x3247 && code !== 0x303f) ||
    (code >= 0x3250 && code <= 0x4dbf) || (code >= 0x4e00 && code <= 0xa4c6) ||
    (code >= 0xa960 && code <= 0xa97c) || (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) || (code >= 0xfe10 && code <= 0xfe19) ||
    (code >= 0xfe30 && code <= 0xfe6b) || (code >= 0xff01 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) || (code >= 0x1b000 && code <= 0x1b001) ||
    (code >= 0x1f200 && code <= 0x1f251) || (code >= 0x1f300 && code <= 0x1f64f) ||
    (code >= 0x20000 && code <= 0x3fffd));

  // -- format: Node's util.format --------------------------------------------
  function hasBuiltInToString(value) {
    if (typeof value.toString !== "function") return true;
    if (hasOwn(value, "toString")) return false;
    let pointer = value;
    do {
      pointer = getPrototypeOf(pointer);
    } while (pointer !== null && !hasOwn(pointer, "toString"));
    if (pointer === null) return true;
    const descriptor = getOwnPropertyDescriptor(pointer, "constructor");
    return descriptor !== undefined && typeof descriptor.value === "function" &&
      mapHas(builtInObjects, descriptor.value.name);
  }

  function stringifyForFormat(value) {
    try {
      return JSONStringify(value);
    } catch (err) {
      if (err instanceof TypeError && includes(String(err.message), "circular")) return "[Circular]";
      throw err;
    }
  }

  function formatPlaceholder(letter, arg) {
    switch (letter) {
      case "s":
        if (typeof arg === "number") return formatNumber(arg);
        if (typeof arg === "bigint") return `${arg}n`;
        if (typeof arg !== "object" || arg === null || !hasBuiltInToString(arg)) return String(arg);
        return inspect(arg, { depth: 0 });
      case "j": return `${stringifyForFormat(arg)}`;
      case "d":
        if (typeof arg === "bigint") return `${arg}n`;
        return typeof arg === "symbol" ? "NaN" : formatNumber(Number(arg));
      case "i":
        if (typeof arg === "bigint") return `${arg}n`;
        return typeof arg === "symbol" ? "NaN" : formatNumber(parseInt(arg));
      case "f": return typeof arg === "symbol" ? "NaN" : formatNumber(parseFloat(arg));
      case "O": return inspect(arg);
      case "o": return inspect(arg, { showHidden: true, depth: 4 });
      case "c": return "";
      default: return undefined;
    }
  }

  function format(...args) {
    const first = args[0];
    let used = 0;
    let str = "";
    let separator = "";
    if (typeof first === "string") {
      if (args.length === 1) return first;
      let lastPos = 0;
      for (let i = 0; i < first.length - 1; i++) {
        if (charCodeAt(first, i) !== 37) continue; // '%'
        const letter = first[++i];
        if (used + 1 !== args.length) {
          if (letter === "%") {
            str += slice(first, lastPos, i);
            lastPos = i + 1;
            continue;
          }
          const text = formatPlaceholder(letter, args[used + 1]);
          if (text === undefined) continue; // not a placeholder
          used++;
          if (lastPos !== i - 1) str += slice(first, lastPos, i - 1);
          str += text;
          lastPos = i + 1;
        } else if (letter === "%") {
          str += slice(first, lastPos, i);
          lastPos = i + 1;
        }
      }
      if (lastPos !== 0) {
        used++;
        separator = " ";
        if (lastPos < first.length) str += slice(first, lastPos);
      }
    }
    for (let i = used; i < args.length; i++) {
      const value = args[i];
      str += separator + (typeof value === "string" ? value : inspect(value));
      separator = " ";
    }
    return str;
  }

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

  // -- console -----------------------------------------------------------------
  const counts = new MapCtor();
  const timers = new MapCtor();
  let groupIndent = "";

  function emit(level, text) {
    if (groupIndent !== "") text = groupIndent + replaceAll(text, "\n", `\n${groupIndent}`);
    host(level, replaceAll(toWellFormed(text), "\0", "\ufffd"));
  }

  const printer = (level) => function (...args) { emit(level, format(...args)); };
  const log = printer("log");
  const warn = printer("warn");

  function formatTime(ms) {
    let hours = 0;
    let minutes = 0;
    let seconds = 0;
    if (ms >= 1000) {
      if (ms >= 60000) {
        if (ms >= 3600000) {
          hours = floor(ms / 3600000);
          ms %= 3600000;
        }
        minutes = floor(ms / 60000);
        ms %= 60000;
      }
      seconds = ms / 1000;
    }
    if (hours !== 0 || minutes !== 0) {
      const [whole, fraction] = split(toFixed(seconds, 3), ".");
      const res = hours !== 0 ? `${hours}:${padStart(`${minutes}`, 2, "0")}` : `${minutes}`;
      return `${res}:${padStart(whole, 2, "0")}.${fraction} (${hours !== 0 ? "h:m" : ""}m:ss.mmm)`;
    }
    if (seconds !== 0) return `${toFixed(seconds, 3)}s`;
    return `${Number(toFixed(ms, 3))}ms`;
  }

  function timeLogImpl(name, label, data) {
    const start = mapGet(timers, label);
    if (start === undefined) {
      warn(`Warning: No such label '${label}' for console.${name}()`);
      return false;
    }
    const text = `${label}: ${formatTime(now() - start)}`;
    if (data.length === 0) log("%s", text);
    else log("%s", text, ...data);
    return true;
  }

  // Node's console.table: a box-drawing table, cells inspected compactly.
  function renderTable(head, columns) {
    const widths = [];
    const rows = [];
    let longest = 0;
    for (const column of columns) longest = max(longest, column.length);
    for (let i = 0; i < head.length; i++) {
      widths[i] = stringWidth(head[i]);
      for (let j = 0; j < longest; j++) {
        if (rows[j] === undefined) rows[j] = [];
        const cell = hasOwn(columns[i], j) && columns[i][j] !== undefined ? columns[i][j] : "";
        rows[j][i] = cell;
        widths[i] = max(widths[i], stringWidth(cell));
      }
    }
    const renderRow = (row) => {
      const cells = [];
      for (let i = 0; i < row.length; i++) push(cells, row[i] + repeat(" ", widths[i] - stringWidth(row[i])));
      return `│ ${join(cells, " │ ")} │`;
    };
    const dividers = [];
    for (const width of widths) push(dividers, repeat("─", width + 2));
    const lines = [`┌${join(dividers, "┬")}┐`, renderRow(head), `├${join(dividers, "┼")}┤`];
    for (const row of rows) push(lines, renderRow(row));
    push(lines, `└${join(dividers, "┴")}┘`);
    return join(lines, "\n");
  }

  function tableCell(value) {
    const depth = value !== null && typeof value === "object" && !isArray(value) &&
      ObjectKeys(value).length > 2 ? -1 : 0;
    return inspect(value, { depth, maxArrayLength: 3, breakLength: Infinity });
  }

  function table(data, properties) {
    if (data === null || typeof data !== "object") return log(data);
    const indexColumn = (length) => {
      const column = [];
      for (let i = 0; i < length; i++) push(column, tableCell(i));
      return column;
    };
    if (isMap(data)) {
      const keys = [];
      const values = [];
      for (const [k, v] of mapEntries(data)) {
        push(keys, tableCell(k));
        push(values, tableCell(v));
      }
      return log(renderTable(["(iteration index)", "Key", "Values"], [indexColumn(keys.length), keys, values]));
    }
    if (isSet(data)) {
      const values = [];
      for (const v of setValues(data)) push(values, tableCell(v));
      return log(renderTable(["(iteration index)", "Values"], [indexColumn(values.length), values]));
    }
    const columns = new MapCtor();
    const primitives = [];
    let hasPrimitives = false;
    const indexKeys = ObjectKeys(data);
    for (let i = 0; i < indexKeys.length; i++) {
      const item = data[indexKeys[i]];
      const primitive = item === null || (typeof item !== "function" && typeof item !== "object");
      if (properties === undefined && primitive) {
        hasPrimitives = true;
        primitives[i] = tableCell(item);
        continue;
      }
      for (const key of properties || ObjectKeys(item)) {
        if (!mapHas(columns, key)) mapSet(columns, key, []);
        const column = mapGet(columns, key);
        column[i] = primitive || !hasOwn(item, key) ? "" : tableCell(item[key]);
      }
    }
    const head = ["(index)"];
    const values = [indexKeys];
    for (const [key, column] of mapEntries(columns)) {
      push(head, `${key}`);
      push(values, column);
    }
    if (hasPrimitives) {
      push(head, "Values");
      push(values, primitives);
    }
    return log(renderTable(head, values));
  }

  const console = {
    log,
    info: printer("info"),
    debug: printer("debug"),
    warn,
    error: printer("error"),
    dirxml: log,
    dir(value, options) {
      emit("log", inspect(value, { customInspect: false, ...(options || {}) }));
    },
    table,
    assert(condition, ...args) {
      if (condition) return;
      if (args.length !== 0 && typeof args[0] === "string") args[0] = `Assertion failed: ${args[0]}`;
      else unshift(args, "Assertion failed");
      warn(...args);
    },
    count(label = "default") {
      label = `${label}`;
      const count = (mapGet(counts, label) || 0) + 1;
      mapSet(counts, label, count);
      log(`${label}: ${count}`);
    },
    countReset(label = "default") {
      label = `${label}`;
      if (!mapDelete(counts, label)) warn(`Warning: Count for '${label}' does not exist`);
    },
    time(label = "default") {
      label = `${label}`;
      if (mapHas(timers, label)) {
        warn(`Warning: Label '${label}' already exists for console.time()`);
        return;
      }
      mapSet(timers, label, now());
    },
    timeEnd(label = "default") {
      label = `${label}`;
      if (timeLogImpl("timeEnd", label, [])) mapDelete(timers, label);
    },
    timeLog(label = "default", ...data) {
      timeLogImpl("timeLog", `${label}`, data);
    },
    group(...label) {
      if (label.length !== 0) log(...label);
      groupIndent += "  ";
    },
    groupEnd() {
      groupIndent = slice(groupIndent, 0, -2);
    },
    trace: function trace(...args) {
      const err = { name: "Trace", message: format(...args) };
      captureStackTrace(err, trace);
      emit("error", errorStack(err));
    },
    clear() {},
    profile() {},
    profileEnd() {},
    timeStamp() {},
  };
  console.groupCollapsed = console.group;

  defineProperty(globalThis, "console", {
    value: console, writable: true, configurable: true, enumerable: false,
  });
  defineProperty(globalThis, "__vmctl", {
    value: freeze({ describe, exception, settle, inspect, format }),
    writable: false, configurable: false, enumerable: false,
  });
})();
