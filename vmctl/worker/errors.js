// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// How an error reads, as Node prints it: the header (`Name: message`), the stack with that
// header first, and the class name when it differs from the error's name.

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
