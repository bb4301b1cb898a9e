// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// Node's util.format: `format(...args)`, the text console methods print.

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
  return formatList(args);
}

// format(...args) over an array the caller made (the console's methods pass theirs on).
function formatList(args) {
  const first = args[0];
  let used = 0;
  let str = "";
  let separator = "";
  if (typeof first === "string") {
    if (args.length === 1) return first;
    let lastPos = 0;
    // From the first '%' on (none: nothing to replace, and no loop over the text).
    for (let i = indexOf(first, "%"); i !== -1 && i < first.length - 1; i++) {
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
    str += separator + (typeof value === "string" ? value : inspectArgument(value));
    separator = " ";
  }
  return str;
}

// What inspect(value) gives, sooner for a primitive (it needs no inspection context), and
// soonest for a number, the commonest argument after a string.
function inspectArgument(value) {
  switch (typeof value) {
    case "number": return formatNumber(value);
    case "object": case "function": case "string": return inspect(value);
    default: return formatPrimitive(undefined, value);
  }
}
