"""What JavaScript can reach of the host: the documented globals only, whatever it replaces.

Each test is an attack, run in a real worker whose worktree holds a secret file and whose
request enables no module unless it says so. Before the module gate moved to the Python
side, a closure handed over by a stack-trace hook, or a ``require`` fooled by a replaced
``JSON.parse``, read the file; before the prelude wrote value JSON itself, an inherited
``toJSON`` made values the worker could not encode.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from vmctl.json_depth import nests_deeper
from vmctl.protocol import MAX_VALUE_DEPTH

from .hooks import HOOKS, UNHOOK
from .jsworker import WorkerProcess, exception_of, kinds, value_of

SECRET = "the secret text"

# Installs hooks everywhere user code can put one while the prelude and `require` run,
# keeping every function they are handed (arguments, receivers, stack frames, callers),
# runs the host's entry points, puts the built-ins back, then tries each function it kept
# as a way into the host. The snippet's value: what any of them returned holding the secret.
HOOKED = (
    HOOKS
    + r"""
for (const name of ["parse", "stringify"]) hook(JSON, name);
for (const name of Object.getOwnPropertyNames(Object)) hook(Object, name);
for (const name of ["push", "join", "map", "forEach", "slice", "includes", "indexOf"]) {
  hook(Array.prototype, name);
}
hook(Array.prototype, Symbol.iterator);
hook(Function.prototype, "call");
hook(Function.prototype, "apply");
hook(Reflect, "apply");
hook(Reflect, "ownKeys");
hook(String.prototype, "replaceAll");
function sloppyToJSON() { keep(sloppyToJSON.caller); new Error("toJSON"); return {}; }
const probe = {
  get a() { new Error("getter"); return 1; },
  toJSON: sloppyToJSON,
  [Symbol.for("nodejs.util.inspect.custom")]() { new Error("inspect"); return "p"; },
};
try { require("fs"); } catch {}
try { require("fs").readFileSync(probe); } catch {}
console.log(probe, "%j", probe);
console.trace("t");
__vmctl.describe(new Proxy({}, { ownKeys() { new Error("trap"); return []; } }));
"""
    + UNHOOK
    + r"""
const found = [];
for (const fn of seen) {
  for (const args of [["fs.readFileSync", ["secret.txt"]], ["secret.txt"], ["require", ["fs"]]]) {
    try {
      const result = Reflect.apply(fn, undefined, args);
      const text = typeof result === "string" ? result : JSON.stringify(result);
      if (String(text).includes("secret")) found.push(String(fn).slice(0, 60));
    } catch {}
  }
}
found
"""
)


@pytest.fixture
def secret(worktree: Path) -> None:
    (worktree / "secret.txt").write_text(SECRET)


@pytest.mark.usefixtures("secret")
def test_no_function_a_hook_or_a_replaced_built_in_is_handed_reads_a_file(
    worker: WorkerProcess,
) -> None:
    assert value_of(worker.repl(HOOKED)).json == []


def test_a_stack_trace_hook_is_handed_no_function(worker: WorkerProcess) -> None:
    code = (
        "let functions = 0;\n"
        "Error.prepareStackTrace = (error, sites) => {\n"
        "  functions += sites.filter((site) => site.getFunction() !== undefined).length;\n"
        "  return 'hooked';\n"
        "};\n"
        "const own = () => new Error('mine').stack;\n"
        "const stack = own();\n"
        "console.log({ get a() { return new Error('g'); }, toString() { new Error('s'); } });\n"
        "try { require('fs'); } catch {}\n"
        "Error.prepareStackTrace = undefined;\n"
        "[stack, functions]"
    )
    assert value_of(worker.repl(code)).json == ["hooked", 0]


@pytest.mark.usefixtures("secret")
def test_a_replaced_json_parse_does_not_open_the_module_gate(worker: WorkerProcess) -> None:
    code = (
        "const parse = JSON.parse;\n"
        "JSON.parse = () => ({ ok: 'fs' });\n"
        "let fs;\n"
        "try { fs = require('fs'); } finally { JSON.parse = parse; }\n"
        "fs.readFileSync('secret.txt', 'utf8')"
    )
    exception = exception_of(worker.repl(code))
    assert exception.message == "Error: Cannot find module 'fs'"


@pytest.mark.usefixtures("secret")
def test_a_module_kept_while_enabled_stops_working_once_disabled(worker: WorkerProcess) -> None:
    keep = "globalThis.kept = require('fs'); kept.readFileSync('secret.txt', 'utf8')"
    assert value_of(worker.repl(keep, modules=("fs",))).json == SECRET
    calls = ("readFileSync('secret.txt', 'utf8')", "existsSync('secret.txt')", "readdirSync('.')")
    for call in calls:
        exception = exception_of(worker.repl(f"kept.{call}"))
        assert exception.message == (
            "Error: Cannot find module 'fs': it is not enabled for this session"
        )
    assert value_of(worker.repl("kept.existsSync('secret.txt')", modules=("fs",))).json is True


def test_replaced_built_ins_change_nothing_the_host_sees(worker: WorkerProcess) -> None:
    code = (
        "Reflect.apply = () => 'replaced';\n"
        "JSON.stringify = () => 'replaced';\n"
        "Array.prototype.join = () => 'replaced';\n"
        "console.log('line', [1, 2]);\n"
        "({ a: [1, 'x'] })"
    )
    frames = worker.repl(code)
    assert kinds(frames) == ["Console", "Value", "Ok"]
    value = value_of(frames)
    assert (value.preview, value.json) == ("{ a: [ 1, 'x' ] }", {"a": [1, "x"]})


# -- value JSON ---------------------------------------------------------------------------

DEEP_TO_JSON = (
    "Object.prototype.toJSON = function () {\n"
    "  if (Array.isArray(this)) return this;\n"
    "  let v = 1;\n"
    "  for (let i = 0; i < {depth}; i++) v = [v];\n"
    "  return v;\n"
    "};\n"
    "({ a: 1 })"
)


@pytest.mark.parametrize("depth", [600, 1000, 100_000])
def test_an_inherited_to_json_is_not_what_json_holds(worker: WorkerProcess, depth: int) -> None:
    value = value_of(worker.repl(DEEP_TO_JSON.replace("{depth}", str(depth))))
    assert (value.preview, value.json) == ("{ a: 1 }", {"a": 1})


@pytest.mark.parametrize(
    ("depth", "has_json"),
    [(MAX_VALUE_DEPTH, True), (MAX_VALUE_DEPTH + 1, False), (1000, False), (100_000, False)],
)
def test_json_nests_at_most_the_protocol_depth(
    worker: WorkerProcess, depth: int, has_json: bool
) -> None:
    for opening, closing in (("[", "]"), ("{a: ", "}")):
        code = f"let v = 1; for (let i = 0; i < {depth}; i++) v = {opening}v{closing}; v"
        json = value_of(worker.repl(code)).json
        if has_json:
            assert nests_deeper(json, depth - 1) and not nests_deeper(json, depth)
        else:
            assert json is msgspec.UNSET


def test_a_proxy_cannot_make_json_differ_from_what_was_checked(worker: WorkerProcess) -> None:
    code = (
        "const deep = () => { let v = 1; for (let i = 0; i < 1000; i++) v = [v]; return v; };\n"
        "new Proxy({}, {\n"
        "  ownKeys: () => ['a'],\n"
        "  getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }),\n"
        "  get: () => deep(),\n"
        "  getPrototypeOf: () => Object.prototype,\n"
        "})"
    )
    assert value_of(worker.repl(code)).json == {"a": 1}


@pytest.mark.parametrize(
    "code",
    [
        # a getter that answers a fresh object holding the getter's owner, each time
        "const o = {}; Object.defineProperty(o, 'self', "
        "{ get() { return { o }; }, enumerable: true }); o",
        # a proxy whose every property is a fresh proxy: endless depth
        "const mk = () => new Proxy({}, { ownKeys: () => ['a'], getOwnPropertyDescriptor: "
        "() => ({ value: mk(), enumerable: true, configurable: true }) }); mk()",
        "Array.from({ length: 200000 }, (_, i) => i)",
        "const a = [1]; a.push(a); a",
    ],
)
def test_values_that_are_not_plain_data_have_no_json(worker: WorkerProcess, code: str) -> None:
    frames = worker.repl(code)
    assert kinds(frames) == ["Value", "Ok"]
    assert value_of(frames).json is msgspec.UNSET
