"""TypeScript stripped by the vendored sucrase (vmctl/worker/typescript.py), in real QuickJS.

Cases are written with the removed text marked: ``⟦...⟧`` is blanked (every character
becomes spaces, one per UTF-8 byte, line breaks kept) and ``⟪...⟫`` is a removed
declaration, blanked with a ``;`` over its first character. Removing the marks gives the
TypeScript; blanking them gives the JavaScript expected, character for character.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import _quickjs
import pytest

from vmctl.worker import typescript
from vmctl.worker.typescript import TypeScriptError, TypeStripper

_MARKED = re.compile(r"⟦(.*?)⟧|⟪(.*?)⟫", re.DOTALL)


def _blank(text: str) -> str:
    return "".join(c if c in "\r\n" else " " * len(c.encode()) for c in text)


def source_of(marked: str) -> str:
    return _MARKED.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), marked)


def expected_of(marked: str) -> str:
    def blank(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return _blank(match.group(1))
        return ";" + _blank(match.group(2))[1:]

    return _MARKED.sub(blank, marked)


# Every erasable construct, each with what is left of it.
ERASED: tuple[str, ...] = (
    "let x⟦: number⟧ = 1",
    "function f(a⟦: string⟧, b⟦?: number⟧)⟦: void⟧ {}",
    "⟪interface P { a: number }⟫\nlet p = 1",
    "⟪type Q = string | number;⟫ let q = 1",
    "⟪type A<T> = { [K in keyof T]?: T[K] }⟫",
    "function id⟦<T>⟧(x⟦: T⟧)⟦: T⟧ { return x }",
    "let y = x⟦ as unknown as string⟧",
    "let z = 1⟦ satisfies number⟧",
    "let w = m⟦!⟧.n⟦!⟧",
    "let v = y?.z⟦!⟧",
    "let obj = { a: 1 }⟦ as const⟧",
    "let c = ⟦<number>⟧x",
    "⟪declare const d: number;⟫ let e = 1",
    "⟪declare function df(): void⟫",
    "⟪declare namespace N { const a: number }⟫",
    "⟪declare module 'm' { export const x: number }⟫",
    "⟪declare global { interface Window { x: number } }⟫",
    "⟪namespace Types { export interface I {} export type T = 1 }⟫",
    "⟪export interface E { a: 1 }⟫",
    "⟪export default interface I {}⟫",
    "⟪export declare const x: number⟫",
    "⟦import type { T } from './t'⟧",
    "⟦export type { T } from './t'⟧",
    "import { ⟦type T,⟧ v } from './t'; v",
    "import D, { ⟦type T⟧ } from './t'; D",
    "import D, * as NS from './t'; D; NS",
    "⟦import U from './t';⟧ let u⟦: U⟧",
    "export { ⟦type T,⟧ v }",
    "class C { ⟦private⟧ a = 1; ⟦protected⟧ b = 2; ⟦public⟧ c = 3; ⟦readonly⟧ d = 4 }",
    "⟦abstract⟧ class A { ⟪abstract m(): void;⟫ n() { return 1 } }",
    "export ⟦abstract⟧ class AB {}",
    "class C⟦ implements I, J⟧ { }",
    "class D extends B⟦<number>⟧⟦ implements I⟧ { }",
    "class G⟦<T extends object = {}>⟧ {}",
    "class K { n⟦!: number⟧; o⟦?: string⟧; ⟦declare p: number⟧; ⟦override⟧ q() {} }",
    "class O { ⟦m(a: string): void;⟧\n  m(a⟦: any⟧) {}\n}",
    "function g(⟦this: Window, ⟧a⟦: number⟧) {}",
    "⟪function h(a: string): string;\nfunction h(a: number): number;⟫\nfunction h(a⟦: any⟧) {}",
    "const f = (a⟦: number⟧)⟦: number⟧ => a",
    "const f = async ⟦<T,>⟧(a⟦: T⟧)⟦: Promise<T>⟧ => a",
    "const f = ⟦<T,>⟧(a⟦: T⟧) => a",
    "let g = f⟦<string>⟧('a')",
    "let m = new Map⟦<string, number>⟧()",
    "for (const k of ks⟦ as string[]⟧) {}",
    "function assertStr(v⟦: unknown⟧)⟦: asserts v is string⟧ {}",
    "function isStr(v⟦: unknown⟧)⟦: v is string⟧ { return true }",
    "let t⟦: `a${string}`⟧ = 'a'",
    "let o = { m⟦<T>⟧(a⟦: T⟧)⟦: T⟧ { return a } }",
    "function f(a⟦: number⟧, { b }⟦: { b: string }⟧, ...rest⟦: number[]⟧) {}",
    "let [a, b]⟦: [number, string]⟧ = [1, 'b']",
    "let fn⟦: (a: number) => void⟧ = () => {}",
    "let u⟦: unique symbol⟧",
    "try {} catch (e⟦: unknown⟧) {}",
    "function k⟦<const T>⟧(x⟦: T⟧) {}",
    "let x = 1 /* c */ ⟦as⟧ /* d */ ⟦number⟧",
    "let é⟦: \"é😀\"⟧ = 'x'",
    # A statement before a removed declaration does not run on into the next line.
    "let x = 1\n⟪interface I {}⟫\n(f)()",
    "let x = 1\n⟪type T = 1⟫\n[1].map(f)",
)


@pytest.fixture(scope="module")
def stripper() -> TypeStripper:
    return TypeStripper()


@pytest.mark.parametrize("marked", ERASED, ids=source_of)
def test_erasable_syntax_becomes_blanks(stripper: TypeStripper, marked: str) -> None:
    assert stripper.strip(source_of(marked), "case.ts") == expected_of(marked)


def _characters(text: str) -> Iterator[tuple[int, int, str]]:
    """Every non-blank character with its 1-based line and UTF-8 byte column (QuickJS's)."""
    for line_number, line in enumerate(text.split("\n"), start=1):
        column = 1
        for char in line:
            if not char.isspace():
                yield line_number, column, char
            column += len(char.encode())


# A file with most of it at once, in the layout of real code.
FILE = """\
import type { Shape } from "./shapes.ts";
import { area, type Unit } from "./shapes.ts";

export interface Point {
  readonly x: number;
  y?: number;
}

type Pair<A, B = A> = [first: A, second: B];

declare const DEBUG: boolean;

export abstract class Figure<T extends Shape = Shape> implements Iterable<T> {
  private readonly items: T[] = [];
  protected abstract name(): string;
  public add(this: Figure<T>, item: T): this {
    this.items.push(item!);
    return this;
  }
  *[Symbol.iterator](): Iterator<T> {
    yield* this.items as Iterable<T>;
  }
}

export function total<S extends Shape>(shapes: readonly S[], unit: Unit = "cm"): string;
export function total(shapes: Shape[], unit?: string): string {
  const sum = shapes.reduce<number>((acc: number, s: Shape): number => acc + area(s), 0);
  return `${sum satisfies number} ${unit as string}`;
}

export const swap = <A, B>([a, b]: Pair<A, B>): Pair<B, A> => [b, a];
"""


def test_a_file_keeps_every_character_where_it_was(stripper: TypeStripper) -> None:
    out = stripper.strip(FILE, "figure.ts")
    assert out.count("\n") == FILE.count("\n")
    source = {(line, column): char for line, column, char in _characters(FILE)}
    kept = list(_characters(out))
    moved = [(line, col, c) for line, col, c in kept if source.get((line, col)) != c]
    # The only characters not in the source are the `;` left by removed declarations.
    assert all(c == ";" and (line, col) in source for line, col, c in moved), moved
    assert "interface" not in out and "private" not in out and "satisfies" not in out
    assert "export function total(shapes" in out and "export abstract" not in out


def _run(code: str) -> object:
    return _quickjs.Context().eval(code)


EVALUATED: tuple[tuple[str, object], ...] = (
    ("function add(a: number, b: number): number { return a + b }; add(1, 2)", 3),
    ("interface P { a: number }\nconst p: P = { a: 41 };\n(p as P).a + 1", 42),
    ("let x = 1\ntype T = number\n[x].map((v: T): T => v * 2)[0]", 2),
    (
        "class C { private n: number = 2; get double(): number { return this.n * 2 } }\n"
        "new C().double",
        4,
    ),
    ("function first<T>(xs: T[]): T | undefined { return xs[0] }; first<string>(['a'])", "a"),
    ("const f = async <T,>(x: T): Promise<T> => x; typeof f", "function"),
    ("let v: unknown = 'text'; (v as string).length", 4),
    ("enum Color { Red, Green = 5, Blue }\n[Color.Red, Color.Blue, Color[5]].join()", "0,6,Green"),
    (
        "class P { constructor(public x: number, private y = 2) {}\n"
        "  sum() { return this.x + this.y } }\nnew P(1).sum()",
        3,
    ),
    (
        "function over(a: string): string;\nfunction over(a: number): number;\n"
        "function over(a: any): any { return a }\nover(7)",
        7,
    ),
    ("const r = (a: number):\n  number => a * 3; r(2)", 6),
    ("declare const missing: number; typeof missing", "undefined"),
    ("let o = { a: 1 } as const satisfies { a: number }; o.a!", 1),
)


@pytest.mark.parametrize(("source", "value"), EVALUATED, ids=[s for s, _ in EVALUATED])
def test_stripped_code_runs(stripper: TypeStripper, source: str, value: object) -> None:
    assert _run(stripper.strip(source, "run.ts")) == value


def _frames(code: str) -> list[tuple[int, int]]:
    """The line and column of each frame of the stack the code's error has (plain binding)."""
    with pytest.raises(_quickjs.JSException) as caught:
        _quickjs.Context().eval(code)
    return [
        (int(line), int(col)) for line, col in re.findall(r"<input>:(\d+):(\d+)", str(caught.value))
    ]


def _position(source: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and UTF-8 byte column of the nth occurrence of needle."""
    offset = -1
    for _ in range(nth + 1):
        offset = source.index(needle, offset + 1)
    before = source[:offset]
    line_start = before.rfind("\n") + 1
    return before.count("\n") + 1, len(before[line_start:].encode()) + 1


STACKS: tuple[str, ...] = (
    "function fail(message: string, code?: number): never {\n"
    "  const e: Error = new Error(message as string); throw e;\n"
    "}\n"
    "const run = (x: number): void => { fail(`bad ${x satisfies number}`) }; run(1 as number)",
    "class Box<T> { private v!: T; open(this: Box<T>): T {\n"
    "  const n: T = null!; return (n as any).x } }\n"
    "interface Ignored { a: 1 }\n"
    "new Box<string>().open()",
    'let é: "é😀" = "é"; function thrower<T>(a: T): T { throw new Error("x" as string) }\n'
    "thrower<number>(1)",
)
# Where each frame of each case must point: (needle, occurrence) in the TypeScript.
FRAME_SITES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("message as", 0), ("x satisfies", 0), ("run(1", 0)),
    (("n as any", 0), ("open()", 0)),
    (("Error(", 0), ("(1)", 0)),
)


@pytest.mark.parametrize(("source", "sites"), list(zip(STACKS, FRAME_SITES, strict=True)))
def test_stack_points_at_the_typescript(
    stripper: TypeStripper, source: str, sites: tuple[tuple[str, int], ...]
) -> None:
    frames = _frames(stripper.strip(source, "stack.ts"))
    expected = [_position(source, needle, nth) for needle, nth in sites]
    # QuickJS reports a frame at the last operand it evaluated: `n` of `n.x`, `message` of
    # `new Error(message)`, `Error` of `new Error("x")`; a call at its callee when the `(`
    # follows it directly, else at the `(` (as it does for `f (1)` in JavaScript).
    assert frames[: len(expected)] == expected


@pytest.mark.parametrize(
    ("source", "line", "column", "reason"),
    [
        ("let ok = 1\nlet x: = 1", 2, 8, "Unexpected token"),
        (
            "let s = 'é';\n  namespace N { export const a = 1 }",
            2,
            17,
            "namespace that holds values",
        ),
        ("\n@decorate class A {}", 2, 1, "decorators are not supported"),
        ("class A { @log m() {} }", 1, 11, "decorators are not supported"),
        ("let é = 'é'; let a = <", 1, 25, "Unexpected token"),
    ],
)
def test_unstrippable_source_is_a_typescript_error_with_its_position(
    stripper: TypeStripper, source: str, line: int, column: int, reason: str
) -> None:
    with pytest.raises(TypeScriptError) as caught:
        stripper.strip(source, "src/a.ts")
    assert str(caught.value).startswith(
        f"TypeScript: cannot strip types at src/a.ts:{line}:{column}: "
    )
    assert reason in str(caught.value)
    assert (caught.value.filename, caught.value.line, caught.value.column) == (
        "src/a.ts",
        line,
        column,
    )


def test_tsx_is_refused(stripper: TypeStripper) -> None:
    with pytest.raises(TypeScriptError, match=r"^TypeScript: .*view\.tsx: JSX \(\.tsx\) is not"):
        stripper.strip("const v = <div/>", "view.tsx")


PLAIN_JS: tuple[str, ...] = (
    "1 + 1",
    "const a = [1, 2, 3].map((x) => x * 2); a",
    "class A { #p = 1; static s = 2; get p() { return this.#p } }",
    "async function* g() { for await (const x of y) yield x?.z ?? 0 }",
    "let re = /a<b>/g, t = `x ${1 + 1}`; // comment: type x = 1",
    "label: for (;;) { break label }",
    "let type = 1, interface_ = 2, declare = 3; type + declare",
    "import { used } from './m'; used()",
    "export default function () {}",
    "a < b; c > d",
)


@pytest.mark.parametrize("source", PLAIN_JS)
def test_plain_javascript_passes_through_unchanged(stripper: TypeStripper, source: str) -> None:
    assert stripper.strip(source, "plain.js") == source


def test_plain_javascript_that_reads_differently_as_typescript(stripper: TypeStripper) -> None:
    # Documented differences: TypeScript reads `f < T > (x)` as a call with a type argument,
    # and drops an import whose bindings are never used as values (its side effects too).
    assert stripper.strip("a < b > (c)", "x.js") == "a       (c)"
    source = "import { unused } from './m'"
    assert stripper.strip(source, "x.js") == " " * len(source)


def test_sucrase_is_loaded_once_and_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real = typescript._sucrase_source

    def counted() -> str:
        loads.append("load")
        return real()

    monkeypatch.setattr(typescript, "_sucrase_source", counted)
    fresh = TypeStripper()
    assert loads == []
    fresh.strip("let a: number = 1", "one.ts")
    fresh.strip("let b: number = 2", "two.ts")
    assert loads == ["load"]


def test_vendor_file_is_one_function_that_touches_no_global() -> None:
    context = _quickjs.Context()
    before = context.eval("JSON.stringify(Object.getOwnPropertyNames(globalThis))")
    make = context.eval(typescript._sucrase_source())
    exported = make()
    after = context.eval("JSON.stringify(Object.getOwnPropertyNames(globalThis))")
    assert json.loads(after) == json.loads(before)
    context.set("exported", exported)
    assert context.eval("Object.keys(exported).join() + ':' + typeof exported.transform") == (
        "transform:function"
    )


@pytest.mark.parametrize(
    "source",
    [
        "let a = " + "(" * 50_000 + "1" + ")" * 50_000,
        "let t: " + "Array<" * 20_000 + "number" + ">" * 20_000 + " = []",
        "{" * 50_000 + "}" * 50_000,
    ],
    ids=["parentheses", "generics", "blocks"],
)
def test_deep_nesting_is_a_clean_error(stripper: TypeStripper, source: str) -> None:
    with pytest.raises(TypeScriptError, match=r"^TypeScript: cannot strip types from deep\.ts: "):
        stripper.strip(source, "deep.ts")
    assert stripper.strip("let after: number = 1", "after.ts") == "let after         = 1"


def test_a_megabyte_file_strips_or_fails_cleanly(stripper: TypeStripper) -> None:
    line = "export function f{}(a: number, b?: string): number {{ return a as number }}\n"
    source = "".join(line.format(i) for i in range(14_000))
    assert len(source) > 1_000_000
    try:
        out = stripper.strip(source, "big.ts")
    except TypeScriptError as exc:
        assert str(exc) == "TypeScript: cannot strip types from big.ts: out of memory"
    else:
        assert len(out.encode()) == len(source.encode())
    assert stripper.strip("let after: number = 1", "after.ts") == "let after         = 1"


def test_a_megabyte_string_strips(stripper: TypeStripper) -> None:
    source = "let s: string = '" + "x" * 1_000_000 + "'; s.length"
    assert _run(stripper.strip(source, "string.ts")) == 1_000_000


def test_nul_and_astral_characters_cross_the_binding(stripper: TypeStripper) -> None:
    assert stripper.strip("let s: '\0' = '\0😀'", "nul.ts") == "let s      = '\0😀'"
