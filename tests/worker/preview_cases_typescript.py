"""REPL snippets with TypeScript types, and what a user sees once the REPL strips them.

The same shape as preview_cases.py (whose dataclasses these are): each snippet runs as an
ExecRepl in one shared session after vmctl/worker/typescript.py has stripped its types,
which keeps every line and column, so stack frames point into the typed text. Frames name
the snippet ``<repl:N>``; N depends on the order the cases run in, so it is matched loosely.
"""

from __future__ import annotations

import re

from .preview_cases import NO_JSON, ConsoleCase, ExceptionCase, ValueCase, pattern

V = ValueCase

VALUES: tuple[ValueCase, ...] = (
    V("const x: number = 1; x + 1", "number", "2", 2),
    V("interface P { a: number }; ({a: 1}) as P", "object", "{ a: 1 }", {"a": 1}),
    V("type Pair = [string, number]; const p: Pair = ['a', 1]; p", "array", "[ 'a', 1 ]", ["a", 1]),
    V("function add(a: number, b: number): number { return a + b }; add(2, 3)", "number", "5", 5),
    V("const id = <T,>(x: T): T => x; id<string>('s')", "string", "s", "s"),
    V("let maybe: string | undefined = 'v'; maybe!.toUpperCase()", "string", "V", "V"),
    V(
        "class Point { constructor(public x: number, private y: number) {} }; new Point(1, 2)",
        "object",
        "Point { x: 1, y: 2 }",
        NO_JSON,
    ),
    V("enum Color { Red, Green }; Color.Green", "number", "1", 1),
    V("enum Dir { Up = 'UP' }; Dir", "object", "{ Up: 'UP' }", {"Up": "UP"}),
    V("const cfg = { port: 80 } satisfies Record<string, number>; cfg.port", "number", "80", 80),
    V(
        "abstract class Shape { abstract area(): number; describe(): string {"
        " return `area ${this.area()}` } }; class Sq extends Shape {"
        " constructor(private s: number) { super() } area(): number { return this.s ** 2 } };"
        " new Sq(3).describe()",
        "string",
        "area 9",
        "area 9",
    ),
    V("declare const injected: number; typeof injected", "string", "undefined", "undefined"),
    V("type Alias = number", "undefined", "undefined", None),
    V("const big = 10n as bigint; big", "bigint", "10n"),
    V(
        "function over(a: string): string; function over(a: number): number;"
        " function over(a: any) { return a }; over(4)",
        "number",
        "4",
        4,
    ),
    V(
        "const xs: Array<number> = [1, 2]; xs.map((n): number => n * 2)",
        "array",
        "[ 2, 4 ]",
        [2, 4],
    ),
    V("let frozen = { a: 1 } as const; frozen", "object", "{ a: 1 }", {"a": 1}),
    V("const five = await (Promise.resolve(5) as Promise<number>); five", "number", "5", 5),
    V("let n = 1\ninterface I {}\n(n as number) + 1", "number", "2", 2),
)


def _log(*lines: str) -> tuple[tuple[str, str], ...]:
    return tuple(("log", line) for line in lines)


C = ConsoleCase

CONSOLE: tuple[ConsoleCase, ...] = (
    C(
        "const greet = (name: string): void => console.log(`hi ${name}`); greet('ts')",
        _log("hi ts"),
    ),
    C("interface U { n: string }; const u: U = { n: 'x' }; console.log(u)", _log("{ n: 'x' }")),
    C("for (const k of ['a', 'b'] as string[]) console.log(k)", _log("a", "b")),
    C("console.warn('%d items' as string, 3 as number)", (("warn", "3 items"),)),
)


def _frames(*positions: tuple[str, int, int]) -> str:
    """Stack frames, each ``at <function> (<repl:N>:line:column)``, as a regex."""
    return "".join(
        rf"\n    at {re.escape(name)} \(<repl:\d+>:{line}:{column}\)"
        for name, line, column in positions
    )


E = ExceptionCase

EXCEPTIONS: tuple[ExceptionCase, ...] = (
    E(
        "function fail(msg: string): never { throw new Error(msg) }\nfail('typed' as string)",
        "Error: typed",
        "Error",
        # QuickJS reports `new Error(msg)` at `msg`, the call at its callee.
        re.compile(r"Error: typed" + _frames(("fail", 1, 53), ("<eval>", 2, 1))),
    ),
    E(
        "const f = (a: number,\n           b: string): number => { throw new TypeError(b) }\n"
        "f(1, 'second line')",
        "TypeError: second line",
        "TypeError",
        re.compile(r"TypeError: second line" + _frames(("f", 2, 56), ("<eval>", 3, 1))),
    ),
    E(
        "const n: number = (null as any).length",
        "TypeError: cannot read property 'length' of null",
        "TypeError",
    ),
    E(
        "class A { private x: number = 1 }; (new A() as any).x.y.z",
        "TypeError: cannot read property 'z' of undefined",
        "TypeError",
    ),
    E(
        "throw new RangeError('r' as string)",
        "RangeError: r",
        "RangeError",
        pattern("RangeError: r{FRAMES}"),
    ),
    E(
        "await Promise.reject(new TypeError('async ts') as Error)",
        "TypeError: async ts",
        "TypeError",
    ),
)
