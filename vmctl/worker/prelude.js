// vmctl prelude: evaluated once into every new context, before libraries.
//
// Interface (fixed; the worker's Python side relies on it):
//   host provides  globalThis.__vmctl_host_console(level, text)  (a Python callable)
//   this defines   globalThis.__vmctl, non-enumerable, with
//     describe(value)     -> JSON text {"type", "preview", "json"?}
//     exception(thrown)   -> JSON text {"message", "name"?, "stack"?}
//   and installs   globalThis.console
// MINIMAL STUB: the full console/inspect semantics replace this.
(function () {
  "use strict";
  const host = globalThis.__vmctl_host_console;
  delete globalThis.__vmctl_host_console;

  function typeOf(v) {
    if (v === null) return "null";
    if (Array.isArray(v)) return "array";
    return typeof v;
  }
  function preview(v, top) {
    if (typeof v === "string") return top ? v : "'" + v + "'";
    if (typeof v === "bigint") return String(v) + "n";
    if (typeof v === "function") return "[Function: " + (v.name || "(anonymous)") + "]";
    if (typeof v === "symbol") return v.toString();
    if (Array.isArray(v)) return v.length ? "[ " + v.map((x) => preview(x, false)).join(", ") + " ]" : "[]";
    if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      return keys.length ? "{ " + keys.map((k) => k + ": " + preview(v[k], false)).join(", ") + " }" : "{}";
    }
    return String(v);
  }
  function describe(v) {
    const out = { type: typeOf(v), preview: preview(v, true) };
    if (v === undefined || v === null) out.json = null;
    else {
      try {
        const text = JSON.stringify(v);
        if (text !== undefined) out.json = JSON.parse(text);
      } catch (e) { /* not JSON-representable: no json field */ }
    }
    return JSON.stringify(out);
  }
  function exception(e) {
    if (e instanceof Error) {
      return JSON.stringify({ name: e.name, message: e.name + ": " + e.message, stack: e.stack });
    }
    return JSON.stringify({ message: "Uncaught " + preview(e, false) });
  }
  function emit(level) {
    return (...args) => host(level, args.map((a) => preview(a, true)).join(" "));
  }
  const console = {
    log: emit("log"), info: emit("info"), warn: emit("warn"),
    error: emit("error"), debug: emit("debug"),
  };
  Object.defineProperty(globalThis, "console", { value: console, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(globalThis, "__vmctl", {
    value: Object.freeze({ describe, exception }), writable: false, configurable: false, enumerable: false,
  });
})();
