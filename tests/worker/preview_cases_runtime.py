"""The golden table's cases for the event loop: timers, microtasks, unhandled rejections.

Joined into preview_cases.py's tuples; the format is that file's.
"""

from __future__ import annotations

from .preview_cases import ConsoleCase, ExceptionCase, SessionCase, ValueCase, pattern

V, C, E, S = ValueCase, ConsoleCase, ExceptionCase, SessionCase

VALUES: tuple[ValueCase, ...] = (
    V("typeof setTimeout", "string", "function", "function"),
    V("typeof setInterval", "string", "function", "function"),
    V(
        "typeof clearTimeout + ' ' + typeof clearInterval",
        "string",
        "function function",
        "function function",
    ),
    V("typeof queueMicrotask", "string", "function", "function"),
    V("typeof setTimeout(() => {}, 1)", "string", "number", "number"),
    V("setTimeout(() => {}) < setTimeout(() => {})", "boolean", "true", True),
    V("await new Promise((r) => setTimeout(r, 20, 'slept'))", "string", "slept", "slept"),
    V(
        "const order = []; setTimeout(() => order.push('timeout'));"
        " queueMicrotask(() => order.push('microtask')); order.push('sync');"
        " await new Promise((r) => setTimeout(r, 5)); order",
        "array",
        "[ 'sync', 'microtask', 'timeout' ]",
        ["sync", "microtask", "timeout"],
    ),
    V(
        "const seen = []; setTimeout(() => seen.push('b'), 10);"
        " setTimeout(() => seen.push('a'), 1); setTimeout(() => seen.push('c'), 10);"
        " await new Promise((r) => setTimeout(r, 30)); seen",
        "array",
        "[ 'a', 'b', 'c' ]",
        ["a", "b", "c"],
    ),
    V(
        "const turns = []; setTimeout(() => { turns.push(1);"
        " Promise.resolve().then(() => turns.push('job')); });"
        " setTimeout(() => turns.push(2)); await new Promise((r) => setTimeout(r, 5)); turns",
        "array",
        "[ 1, 'job', 2 ]",
        [1, "job", 2],
    ),
    V(
        "let ticks = 0;"
        " const every = setInterval(() => { if (++ticks === 3) clearInterval(every) }, 2); ticks",
        "number",
        "0",
        0,
    ),
    V("ticks", "number", "3", 3),
    V(
        "const gone = setTimeout(() => { throw new Error('never') }, 1); clearTimeout(gone)",
        "undefined",
        "undefined",
        None,
    ),
    V(
        "clearTimeout(123456); clearInterval('nope'); clearTimeout()",
        "undefined",
        "undefined",
        None,
    ),
    V(
        "await new Promise((r) => setTimeout(function () { r(this === globalThis) }, 1))",
        "boolean",
        "true",
        True,
    ),
    V("Promise.resolve(7)", "number", "7", 7),
    V("await (Promise.resolve(5))", "number", "5", 5),
    V("const doubled = await (Promise.resolve(4)) * 2; doubled", "number", "8", 8),
    V(
        "new Promise((r) => setTimeout(() => r({ late: true }), 5))",
        "object",
        "{ late: true }",
        {"late": True},
    ),
    V(
        "const handled = Promise.reject(new Error('x')); await null; handled.catch(() => {}); 'ok'",
        "string",
        "ok",
        "ok",
    ),
    V("Promise.reject(new Error('caught')).catch((e) => e.message)", "string", "caught", "caught"),
)

CONSOLE: tuple[ConsoleCase, ...] = (
    C(
        "setTimeout(() => console.log('later'), 5); console.log('now')",
        (("log", "now"), ("log", "later")),
    ),
    C("setTimeout((a, b) => console.log(a + b), 1, 'x', 'y')", (("log", "xy"),)),
    C(
        "let n = 0; const i = setInterval(() => { console.log('tick', ++n); if (n === 2)"
        " clearInterval(i) }, 1)",
        (("log", "tick 1"), ("log", "tick 2")),
    ),
    C(
        "queueMicrotask(() => console.log('micro')); console.log('sync')",
        (("log", "sync"), ("log", "micro")),
    ),
)

EXCEPTIONS: tuple[ExceptionCase, ...] = (
    E(
        "(async () => { throw new Error('lost') })(); 1",
        "Error: lost",
        "Error",
        pattern("Error: lost{FRAMES}"),
    ),
    E("Promise.reject(42); 'ignored'", "Uncaught 42"),
    E(
        "new Promise((_, reject) => reject(new RangeError('value')))",
        "RangeError: value",
        "RangeError",
        pattern("RangeError: value{FRAMES}"),
    ),
    E(
        "setTimeout(() => { throw new TypeError('in a timer') }, 1); 'scheduled'",
        "TypeError: in a timer",
        "TypeError",
        pattern("TypeError: in a timer{FRAMES}"),
    ),
    E(
        "new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 5))",
        "Error: late",
        "Error",
        pattern("Error: late{FRAMES}"),
    ),
    E(
        "const early = Promise.reject(new Error('too late to catch'));"
        " setTimeout(() => early.catch(() => {}), 1)",
        "Error: too late to catch",
        "Error",
        pattern("Error: too late to catch{FRAMES}"),
    ),
    E(
        "setTimeout('1 + 1')",
        'TypeError: The "callback" argument must be of type function. Received type string'
        " ('1 + 1')",
        "TypeError",
        pattern(
            'TypeError: The "callback" argument must be of type function. Received type string'
            " ('1 + 1'){FRAMES} {\n  code: 'ERR_INVALID_ARG_TYPE'\n}"
        ),
    ),
    E(
        "new Promise(() => {})",
        "Error: Promise never settled: nothing is left that could resolve it",
        "Error",
    ),
)

SESSIONS: tuple[SessionCase, ...] = (
    S(
        "a failed execution's timers never run",
        (
            (
                "var fired = false; setTimeout(() => { fired = true }, 1); throw new Error('x')",
                None,
            ),
            ("await new Promise((r) => setTimeout(r, 20)); fired", "false"),
        ),
    ),
    S(
        "an execution waits for every timer it started",
        (
            (
                "var done = 0; for (let i = 0; i < 5; i++) setTimeout(() => done++, i); 'started'",
                "started",
            ),
            ("done", "5"),
        ),
    ),
)
