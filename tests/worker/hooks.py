"""JavaScript that plays the attacker of the host's callables (test_host_access, test_webapis).

:data:`HOOKS` sets a stack-trace hook and defines ``hook(owner, name)``, which replaces a
built-in with a wrapper that keeps every function it is handed (receiver, arguments, the
functions of the frames a new Error sees); each kept function lands in the set ``seen``.
:data:`UNHOOK` puts every replaced built-in back and drops the stack-trace hook. A test's
snippet is ``HOOKS``, its own hooks and calls of the host's entry points, ``UNHOOK``, then
tries each function in ``seen`` as a way into the host.
"""

HOOKS = r"""
const seen = new Set();
const keep = (v) => { if (typeof v === "function") seen.add(v); };
Error.prepareStackTrace = (error, sites) => {
  for (const site of sites) keep(site.getFunction());
  return "";
};
const replaced = [];
const apply = Reflect.apply;
let busy = false;
function hook(owner, name) {
  const original = owner[name];
  if (typeof original !== "function") return;
  replaced.push([owner, name, original]);
  owner[name] = function (...args) {
    if (!busy) {
      busy = true;
      keep(this);
      for (let i = 0; i < args.length; i++) keep(args[i]);
      new Error("hook");
      busy = false;
    }
    return apply(original, this, args);
  };
}
"""

UNHOOK = r"""
for (const [owner, name, original] of replaced.reverse()) owner[name] = original;
Error.prepareStackTrace = undefined;
"""
