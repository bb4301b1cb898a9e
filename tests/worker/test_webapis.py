"""The web APIs (webapis.js, hostcrypto.py, vendor/*.js) in a real worker.

The upstream tests are a slice of web-platform-tests (tests/worker/wpt/README.md), run
through the worker with a small testharness (wpt/harness.js): every case must pass except
those in :data:`KNOWN_FAILURES`, and each of those must still fail (when one starts passing,
take it off the list). The other tests pin down what the vendored libraries do not: how the
globals are installed, crypto, and what user code can reach of the host.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vmctl.protocol import ExecLimits
from vmctl.worker import hostcrypto

from .hooks import HOOKS, UNHOOK
from .jsworker import LIMITS, WorkerProcess, exception_of, open_worker, value_of

WPT = Path(__file__).parent / "wpt"

GLOBALS = (
    "URL",
    "URLSearchParams",
    "TextEncoder",
    "TextDecoder",
    "structuredClone",
    "Event",
    "EventTarget",
    "CustomEvent",
    "AbortController",
    "AbortSignal",
    "crypto",
    "Crypto",
    "SubtleCrypto",
)
LAZY = ("URL", "URLSearchParams", "TextEncoder", "TextDecoder")

# WPT suite -> {test name: why it fails here}.
_NO_MULTI_BYTE = (
    "the test decodes gb18030 too; the bundle leaves out the multi-byte (CJK) encodings"
)
KNOWN_FAILURES: dict[str, dict[str, str]] = {
    "encoding/textdecoder-eof.any.js": {
        "TextDecoder end-of-queue handling": _NO_MULTI_BYTE,
        "TextDecoder end-of-queue handling using stream: true": _NO_MULTI_BYTE,
    },
}


def _suites() -> list[str]:
    files = sorted(WPT.glob("url/urlsearchparams-*.any.js")) + sorted(WPT.glob("encoding/*.any.js"))
    return ["url/urltestdata.json", "url/setters_tests.json"] + [
        str(path.relative_to(WPT)) for path in files
    ]


def _suite_source(suite: str) -> str:
    text = (WPT / suite).read_text(encoding="utf-8")
    if suite == "url/urltestdata.json":
        return f"runURLTests({text});"
    if suite == "url/setters_tests.json":
        return f"runSetterTests({text});"
    return text


def js(worker: WorkerProcess, code: str, **runtime: Any) -> Any:
    """The JSON value of ``code`` (which must have one)."""
    value = value_of(worker.repl(code, **runtime))
    assert value.json is not msgspec.UNSET, value
    return value.json


@pytest.fixture(scope="module")
def wpt_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    with open_worker(tmp_path_factory.mktemp("worktree")) as worker:
        harness = (WPT / "harness.js").read_text(encoding="utf-8")
        runners = (WPT / "url" / "runners.js").read_text(encoding="utf-8")
        value_of(worker.repl(f"{harness}\n{runners}\nundefined"))
        yield worker


@pytest.mark.parametrize("suite", _suites())
def test_web_platform_tests_pass(wpt_worker: WorkerProcess, suite: str) -> None:
    code = f"(function () {{\n{_suite_source(suite)}\n}})();\nawait __wpt.report()"
    report = value_of(wpt_worker.repl(code)).json
    assert isinstance(report, dict), report
    failures = {name: message for name, message in report["failures"]}
    known = KNOWN_FAILURES.get(suite, {})
    assert report["total"] > 0
    assert {name: failures[name] for name in failures.keys() - known.keys()} == {}
    assert sorted(known.keys() - failures.keys()) == [], "these pass now: take them off the list"


# -- how the globals are installed ---------------------------------------------------------


def test_globals_are_non_enumerable_writable_and_configurable(worker: WorkerProcess) -> None:
    names = json.dumps(GLOBALS)
    described = js(
        worker,
        f"{names}.map((name) => {{ globalThis[name];"
        " const d = Object.getOwnPropertyDescriptor(globalThis, name);"
        " return [name, 'value' in d, d.writable, d.enumerable, d.configurable]; })",
    )
    assert described == [[name, True, True, False, True] for name in GLOBALS]
    assert js(worker, f"Object.keys(globalThis).filter((k) => {names}.includes(k))") == []


def test_lazy_globals_load_on_first_read(worker: WorkerProcess) -> None:
    names = json.dumps(LAZY)
    before = f"{names}.map((n) => typeof Object.getOwnPropertyDescriptor(globalThis, n).get)"
    assert js(worker, before) == ["function"] * len(LAZY)
    assert js(worker, "typeof URL") == "function"
    after = (
        "['URL', 'URLSearchParams']"
        ".map((n) => 'value' in Object.getOwnPropertyDescriptor(globalThis, n))"
    )
    assert js(worker, after) == [True, False]  # URLSearchParams stays lazy until read
    assert js(worker, "new URLSearchParams('a=1') instanceof URLSearchParams") is True


def test_a_lazy_global_can_be_replaced_or_deleted_before_its_first_read(
    worker: WorkerProcess,
) -> None:
    assert js(
        worker,
        "URL = 42; [typeof URL, 'value' in Object.getOwnPropertyDescriptor(globalThis, 'URL')]",
    ) == [
        "number",
        True,
    ]
    assert js(worker, "delete TextDecoder; typeof TextDecoder") == "undefined"
    assert js(worker, "'TextDecoder' in globalThis") is False
    assert js(worker, "new TextEncoder().encode('a')[0]") == 97  # its neighbour still loads


def test_every_global_can_be_replaced(worker: WorkerProcess) -> None:
    code = f"{json.dumps(GLOBALS)}.map((n) => {{ globalThis[n] = n; return globalThis[n] === n; }})"
    assert js(worker, code) == [True] * len(GLOBALS)


# -- crypto ---------------------------------------------------------------------------------


def test_get_random_values_fills_and_returns_the_same_array(worker: WorkerProcess) -> None:
    code = (
        "const a = new Uint32Array(64), b = new Uint32Array(64);"
        " [crypto.getRandomValues(a) === a, crypto.getRandomValues(b) === b,"
        " a.some((x) => x !== 0), a.join() !== b.join()]"
    )
    assert js(worker, code) == [True, True, True, True]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "crypto.getRandomValues(new Float64Array(2))",
            "TypeMismatchError: The data argument must be an integer-type TypedArray",
        ),
        (
            "crypto.getRandomValues(new DataView(new ArrayBuffer(2)))",
            "TypeMismatchError: The data argument must be an integer-type TypedArray",
        ),
        (
            "crypto.getRandomValues(new Uint8Array(65537))",
            "QuotaExceededError: The ArrayBufferView's byte length (65537) exceeds the number of"
            " bytes of entropy available via this API (65536)",
        ),
        (
            "crypto.getRandomValues([1, 2])",
            "TypeError: Failed to execute 'getRandomValues' on 'Crypto': parameter 1 is not of"
            " type 'ArrayBufferView'.",
        ),
        ("new Crypto()", "TypeError: Illegal constructor"),
        ("crypto.getRandomValues.call({}, new Uint8Array(1))", "TypeError: Illegal invocation"),
    ],
)
def test_get_random_values_refuses_what_the_standard_refuses(
    worker: WorkerProcess, code: str, message: str
) -> None:
    assert exception_of(worker.repl(code)).message == message


def test_get_random_values_fills_only_its_view(worker: WorkerProcess) -> None:
    code = (
        "const buffer = new Uint8Array(16).fill(7);"
        " crypto.getRandomValues(new Uint16Array(buffer.buffer, 4, 2));"
        " [...buffer.subarray(0, 4), ...buffer.subarray(8)]"
    )
    assert js(worker, code) == [7] * 12
    assert js(worker, "crypto.getRandomValues(new Uint8Array(65536)).length") == 65536
    assert js(worker, "crypto.getRandomValues(new BigInt64Array(0)).length") == 0


def test_random_uuid_is_a_lowercase_version_4_uuid(worker: WorkerProcess) -> None:
    uuids = js(worker, "[crypto.randomUUID(), crypto.randomUUID()]")
    pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(pattern.fullmatch(each) for each in uuids)
    assert uuids[0] != uuids[1]


@pytest.mark.parametrize("algorithm", ["SHA-1", "SHA-256", "SHA-384", "SHA-512"])
def test_digest_matches_hashlib(worker: WorkerProcess, algorithm: str) -> None:
    data = bytes(range(256)) * 3
    expected = hashlib.new(algorithm.replace("-", "").lower(), data).hexdigest()
    code = (
        f"const bytes = new Uint8Array(768).map((_, i) => i % 256);"
        f" const hex = async (a, d) => new Uint8Array(await crypto.subtle.digest(a, d)).toHex();"
        f" [await hex({json.dumps(algorithm)}, bytes),"
        f" await hex({{ name: {json.dumps(algorithm.lower())} }}, bytes.buffer),"
        f" await hex({json.dumps(algorithm)}, new DataView(bytes.buffer)),"
        f" await hex({json.dumps(algorithm)}, new Uint16Array(bytes.buffer, 2, 10)),"
        f" (await crypto.subtle.digest({json.dumps(algorithm)}, new Uint8Array(0)))"
        " instanceof ArrayBuffer]"
    )
    sliced = hashlib.new(algorithm.replace("-", "").lower(), data[2:22]).hexdigest()
    assert js(worker, code) == [expected, expected, expected, sliced, True]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "await crypto.subtle.digest('MD5', new Uint8Array(1))",
            "NotSupportedError: Unrecognized algorithm name: MD5",
        ),
        (
            "await crypto.subtle.digest('SHA-256', 'text')",
            "TypeError: Failed to execute 'digest' on 'SubtleCrypto': The provided value is not"
            " of type '(ArrayBuffer or ArrayBufferView)'.",
        ),
        (
            "await crypto.subtle.digest({}, new Uint8Array(1))",
            "TypeError: Failed to execute 'digest' on 'SubtleCrypto': Algorithm: name is missing"
            " or not a string.",
        ),
    ],
)
def test_digest_rejects_what_it_cannot_do(worker: WorkerProcess, code: str, message: str) -> None:
    assert exception_of(worker.repl(code)).message == message


def test_digest_returns_a_promise_even_when_it_fails(worker: WorkerProcess) -> None:
    code = (
        "const p = crypto.subtle.digest('nope', 1);"
        " [p instanceof Promise, await p.catch((e) => e.name)]"
    )
    assert js(worker, code) == [True, "NotSupportedError"]


def test_digest_refuses_more_than_64_mib(worker: WorkerProcess) -> None:
    limits = ExecLimits(cpu_ms=LIMITS.cpu_ms, wall_ms=LIMITS.wall_ms, mem_mb=256)
    frames = worker.repl(
        "await crypto.subtle.digest('SHA-256', new Uint8Array(64 * 1024 * 1024 + 1))", limits
    )
    assert exception_of(frames).message == (
        "QuotaExceededError: crypto.subtle.digest() takes at most 67108864 bytes (64 MiB) here;"
        " got 67108865"
    )


def test_crypto_has_the_web_shapes(worker: WorkerProcess) -> None:
    code = (
        "[Object.prototype.toString.call(crypto), Object.prototype.toString.call(crypto.subtle),"
        " crypto instanceof Crypto, crypto.subtle instanceof SubtleCrypto,"
        " crypto.subtle === crypto.subtle, Object.keys(crypto).length]"
    )
    assert js(worker, code) == ["[object Crypto]", "[object SubtleCrypto]", True, True, True, 0]


@pytest.mark.parametrize(
    ("op", "arg", "data", "error"),
    [
        ("random", 65537, "", "QuotaExceededError"),
        ("random", -1, "", "QuotaExceededError"),
        ("random", 1.5, "", "QuotaExceededError"),
        ("random", "8", "", "QuotaExceededError"),
        ("digest", "MD5", "", "NotSupportedError"),
        ("digest", "SHA-256", "not base64!", "DataError"),
        ("digest", "SHA-256", 12, "DataError"),
        (
            "digest",
            "SHA-256",
            "A" * (hostcrypto.MAX_DIGEST_BYTES // 3 * 4 + 8),
            "QuotaExceededError",
        ),
        ("nope", "", "", "NotSupportedError"),
        (None, None, None, "NotSupportedError"),
    ],
)
def test_the_host_side_answers_errors_as_data(
    op: object, arg: object, data: object, error: str
) -> None:
    reply = json.loads(hostcrypto.call(op, arg, data))
    assert reply["name"] == error


def test_the_host_side_answers_bytes_as_base64() -> None:
    assert len(json.loads(hostcrypto.call("random", 16))["ok"]) == 24
    digest = json.loads(hostcrypto.call("digest", "sha-1", "YWJj"))["ok"]
    assert digest == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="


# -- what user code can reach of the host --------------------------------------------------


def test_the_host_callables_are_not_globals(worker: WorkerProcess) -> None:
    code = (
        "[typeof __vmctl_host_crypto, typeof __vmctl_vendor, 'vendor' in globalThis,"
        " typeof __vmctl_host_load, typeof __vmctl_receive,"
        " Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith('__vmctl_'))]"
    )
    hidden = ["undefined", "undefined", False, "undefined", "undefined", []]
    assert js(worker, code) == hidden
    # Loading a lazy library (URL) through the host leaves nothing behind either.
    assert js(worker, "new URL('http://example.com/a').pathname") == "/a"
    assert js(worker, code) == hidden


# Calls every crypto entry point with a stack-trace hook set and built-ins replaced by
# wrappers that keep every function they are handed, then tries each kept function as the
# host callable. The value: what any of them answered that looks like a host reply.
HOOKED = (
    HOOKS
    + r"""
for (const name of ["parse", "stringify"]) hook(JSON, name);
hook(Uint8Array, "fromBase64");
hook(Uint8Array.prototype, "toBase64");
hook(Object.getPrototypeOf(Uint8Array.prototype), "set");
hook(Function.prototype, "call");
hook(Function.prototype, "apply");
hook(Reflect, "apply");
hook(String.prototype, "toUpperCase");
const probe = { get name() { new Error("getter"); return "SHA-256"; } };
crypto.getRandomValues(new Uint8Array(8));
crypto.randomUUID();
await crypto.subtle.digest(probe, new Uint8Array(8));
try { crypto.getRandomValues(new Float32Array(1)); } catch {}
try { await crypto.subtle.digest("MD5", new Uint8Array(1)); } catch {}
"""
    + UNHOOK
    + r"""
const found = [];
for (const fn of seen) {
  for (const args of [["random", 8, ""], ["uuid", "", ""]]) {
    try {
      const result = Reflect.apply(fn, undefined, args);
      if (typeof result === "string" && result.includes('"ok"')) found.push(String(fn));
    } catch {}
  }
}
found
"""
)


def test_no_function_a_hook_is_handed_is_the_host_callable(worker: WorkerProcess) -> None:
    assert js(worker, HOOKED) == []


def test_replaced_built_ins_change_nothing_crypto_does(worker: WorkerProcess) -> None:
    code = """
    JSON.parse = () => ({ ok: "AAAA" });
    Uint8Array.fromBase64 = () => new Uint8Array(32);
    Uint8Array.prototype.toBase64 = () => "";
    Object.getPrototypeOf(Uint8Array.prototype).set = () => {};
    String.prototype.toUpperCase = () => "MD5";
    globalThis.DOMException = function () { return { name: "fake" }; };
    const a = crypto.getRandomValues(new Uint8Array(32));
    const d = new Uint8Array(await crypto.subtle.digest("sha-256", new Uint8Array([97, 98, 99])));
    let name;
    try { crypto.getRandomValues(new Float32Array(1)); } catch (e) { name = e.name; }
    [a.some((x) => x !== 0), Array.from(d.subarray(0, 4)), name, crypto.randomUUID().length]
    """
    assert js(worker, code) == [True, [0xBA, 0x78, 0x16, 0xBF], "TypeMismatchError", 36]


# -- the other globals, briefly (the WPT slice covers URL and the encoders) ----------------


def test_structured_clone_copies_what_the_standard_copies(worker: WorkerProcess) -> None:
    code = """
    const source = { d: new Date(0), m: new Map([[1, new Set([2n])]]), r: /x/gi,
      t: new Uint16Array([1, 2]), e: new RangeError("boom"), n: -0 };
    source.self = source;
    const copy = structuredClone(source);
    [copy !== source, copy.self === copy, copy.d.getTime(), [...copy.m.get(1)][0] === 2n,
     copy.r.flags, Array.from(copy.t), copy.e instanceof RangeError, copy.e.message,
     Object.is(copy.n, -0), copy.m !== source.m]
    """
    assert js(worker, code) == [True, True, 0, True, "gi", [1, 2], True, "boom", True, True]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("structuredClone(() => 1)", "DataCloneError: function could not be cloned."),
        ("structuredClone({ s: Symbol('x') })", "DataCloneError: symbol could not be cloned."),
        (
            "structuredClone()",
            "TypeError: structuredClone: 1 argument required, but only 0 present.",
        ),
        (
            "structuredClone(new ArrayBuffer(1), { transfer: [new ArrayBuffer(1)] })",
            "DataCloneError: structuredClone: transfer is not supported",
        ),
    ],
)
def test_structured_clone_refuses_what_it_cannot_clone(
    worker: WorkerProcess, code: str, message: str
) -> None:
    assert exception_of(worker.repl(code)).message == message


def test_abort_controller_has_reasons(worker: WorkerProcess) -> None:
    code = """
    const log = [];
    const c = new AbortController();
    c.signal.addEventListener("abort", (e) => log.push(["listener", e.type, c.signal.reason]));
    c.signal.onabort = () => log.push(["onabort", c.signal.aborted]);
    c.abort("why");
    c.abort("again");
    let thrown;
    try { c.signal.throwIfAborted(); } catch (e) { thrown = e; }
    const d = new AbortController(); d.abort();
    const any = AbortSignal.any([new AbortController().signal, AbortSignal.abort(7)]);
    const later = new AbortController();
    const joined = AbortSignal.any([later.signal]);
    later.abort("late");
    [log, thrown, d.signal.reason.name, d.signal.reason instanceof DOMException,
     any.aborted, any.reason, joined.reason, c.signal instanceof EventTarget,
     new AbortController().signal.throwIfAborted() ?? null]
    """
    assert js(worker, code) == [
        [["listener", "abort", "why"], ["onabort", True]],
        "why",
        "AbortError",
        True,
        True,
        7,
        "late",
        True,
        None,
    ]


def test_abort_signal_timeout_aborts_with_a_timeout_error(worker: WorkerProcess) -> None:
    # Something else keeps the execution running (here a 200 ms timer) while it fires.
    code = (
        "const signal = AbortSignal.timeout(5);"
        " const reason = await new Promise((resolve) => {"
        " signal.onabort = () => resolve(signal.reason); setTimeout(resolve, 200); });"
        " [reason.name, reason instanceof DOMException, signal.aborted]"
    )
    assert js(worker, code) == ["TimeoutError", True, True]
    assert exception_of(worker.repl("AbortSignal.timeout(-1)")).message == (
        "TypeError: AbortSignal.timeout: milliseconds is outside the accepted range"
    )


def test_abort_signal_timeout_does_not_keep_its_execution_running(
    worker: WorkerProcess,
) -> None:
    # As in Node, where its timer is unref'd: the execution ends with its own work...
    started = time.monotonic()
    assert js(worker, "globalThis.pending = AbortSignal.timeout(60_000); 'done'") == "done"
    assert time.monotonic() - started < 5
    # ...and its timer is dropped with it: the signal never aborts later.
    assert js(worker, "await new Promise((r) => setTimeout(r, 20)); pending.aborted") is False
    # Waiting on it alone is waiting on nothing, as a Node script that did would end.
    frames = worker.repl("await new Promise((r) => { AbortSignal.timeout(5).onabort = r })")
    assert "Promise never settled" in exception_of(frames).message


def test_abort_signal_cannot_be_constructed(worker: WorkerProcess) -> None:
    assert (
        exception_of(worker.repl("new AbortSignal()")).message == "TypeError: Illegal constructor"
    )


def test_event_target_dispatches_like_the_dom(worker: WorkerProcess) -> None:
    code = """
    const target = new EventTarget();
    const log = [];
    target.addEventListener("ping", (e) => log.push(["once", e.detail]), { once: true });
    const object = { handleEvent(e) { log.push(["object", e.target === target]); } };
    target.addEventListener("ping", object);
    target.addEventListener("stop", (e) => e.preventDefault());
    target.dispatchEvent(new CustomEvent("ping", { detail: 1 }));
    target.dispatchEvent(new CustomEvent("ping", { detail: 2 }));
    [log, target.dispatchEvent(new Event("stop", { cancelable: true })),
     target.dispatchEvent(new Event("stop")), new CustomEvent("x").detail,
     new CustomEvent("x") instanceof Event, Object.prototype.toString.call(new CustomEvent("x"))]
    """
    assert js(worker, code) == [
        [["once", 1], ["object", True], ["object", True]],
        False,
        True,
        None,
        True,
        "[object CustomEvent]",
    ]
