// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// Node's util.inspect: `inspect(value, options)` and the text of each kind of value. Errors
// are in errors.js, line breaking and column widths in layout.js.

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
