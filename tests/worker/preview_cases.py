"""What a REPL user sees, snippet by snippet: the golden table behind test_previews.py.

Every change that alters a preview, a console line or an exception message shows up
here. Expectations follow the Node REPL and ``util.inspect`` (depth 2, breakLength 80,
compact 3, 100 array items, 10000 string characters), except where prelude.js says
QuickJS cannot tell (a promise's state, an iterator's entries).

Stack frames name the file the runtime gave the engine, so they are matched loosely
with :data:`FRAMES` (one or more ``    at ...`` lines).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any


class _Absent(enum.Enum):
    JSON = "no json field"


NO_JSON = _Absent.JSON

Text = str | re.Pattern[str]

# One or more stack frame lines, whatever file and position they name.
FRAMES = r"(?:\n +at [^\n]+)+"


def pattern(text: str) -> re.Pattern[str]:
    """A full-match pattern: ``{FRAMES}`` stands for stack frames, the rest is literal."""
    return re.compile(FRAMES.join(re.escape(part) for part in text.split("{FRAMES}")))


@dataclass(frozen=True)
class ValueCase:
    code: str
    type: str
    preview: Text
    json: Any = NO_JSON


@dataclass(frozen=True)
class ConsoleCase:
    code: str
    lines: tuple[tuple[str, Text], ...]


@dataclass(frozen=True)
class ExceptionCase:
    code: str
    message: str
    name: str | None = None
    stack: Text | None = None
    # Why the worker does not do this yet: the case is then an expected failure.
    gap: str | None = None


@dataclass(frozen=True)
class SessionCase:
    """Snippets run one after another in a fresh session, each with its expected preview
    (None: the snippet throws)."""

    name: str
    steps: tuple[tuple[str, str | None], ...]


V = ValueCase

VALUES: tuple[ValueCase, ...] = (
    # -- primitives
    V("42", "number", "42", 42),
    V("1.5", "number", "1.5", 1.5),
    V("-0", "number", "-0"),
    V("NaN", "number", "NaN"),
    V("Infinity", "number", "Infinity"),
    V("-Infinity", "number", "-Infinity"),
    V("0.1 + 0.2", "number", "0.30000000000000004", 0.30000000000000004),
    V("1e21", "number", "1e+21", 1e21),
    V("2 ** 53", "number", "9007199254740992", 9007199254740992),
    V("'hello'", "string", "hello", "hello"),
    V("''", "string", "", ""),
    V("'two\\nlines'", "string", "two\nlines", "two\nlines"),
    V("'it\\'s'", "string", "it's", "it's"),
    V("'😀'", "string", "😀", "😀"),
    V("true", "boolean", "true", True),
    V("undefined", "undefined", "undefined", None),
    V("null", "null", "null", None),
    V("void 0", "undefined", "undefined", None),
    V("123n", "bigint", "123n"),
    V("-5n", "bigint", "-5n"),
    V("2n ** 70n", "bigint", "1180591620717411303424n"),
    V("Symbol('x')", "symbol", "Symbol(x)"),
    V("Symbol()", "symbol", "Symbol()"),
    V("Symbol.iterator", "symbol", "Symbol(Symbol.iterator)"),
    V("'x'.repeat(10005)", "string", "x" * 10000 + "... 5 more characters", "x" * 10005),
    V("'ab'.repeat(40000)", "string", "ab" * 5000 + "... 70000 more characters"),
    # -- arrays
    V("[1, 2, 3]", "array", "[ 1, 2, 3 ]", [1, 2, 3]),
    V("[]", "array", "[]", []),
    V("['a', 'b']", "array", "[ 'a', 'b' ]", ["a", "b"]),
    V("[1, [2, [3, [4, [5]]]]]", "array", "[ 1, [ 2, [ 3, [Array] ] ] ]", [1, [2, [3, [4, [5]]]]]),
    V("[1, , 3]", "array", "[ 1, <1 empty item>, 3 ]"),
    V("new Array(5)", "array", "[ <5 empty items> ]"),
    V("[undefined, null]", "array", "[ undefined, null ]"),
    V("[-0, 0]", "array", "[ -0, 0 ]"),
    V("Object.assign([1, 2], {extra: true})", "array", "[ 1, 2, extra: true ]"),
    V("[[1, 2], [3, 4]]", "array", "[ [ 1, 2 ], [ 3, 4 ] ]", [[1, 2], [3, 4]]),
    V(
        "[{a: 1, b: 2}, {a: 3}]",
        "array",
        "[ { a: 1, b: 2 }, { a: 3 } ]",
        [{"a": 1, "b": 2}, {"a": 3}],
    ),
    V("[1, 2, 3, 4, 5, 6, 7]", "array", "[\n  1, 2, 3, 4,\n  5, 6, 7\n]", [1, 2, 3, 4, 5, 6, 7]),
    V(
        "[1.5, -2, 300, 4, 5, 6, 7, 8]",
        "array",
        "[\n  1.5, -2, 300, 4,\n    5,  6,   7, 8\n]",
        [1.5, -2, 300, 4, 5, 6, 7, 8],
    ),
    V(
        "['a', 'bb', 'ccc', 'dddd', 'e', 'f', 'g']",
        "array",
        "[\n  'a',   'bb',\n  'ccc', 'dddd',\n  'e',   'f',\n  'g'\n]",
        ["a", "bb", "ccc", "dddd", "e", "f", "g"],
    ),
    V(
        "Array.from({length: 120}, (_, i) => i * 3)",
        "array",
        "[\n"
        + "".join(
            "  " + ", ".join(f"{n:3d}" for n in range(row, min(row + 36, 300), 3)) + ",\n"
            for row in range(0, 300, 36)
        )
        + "  ... 20 more items\n]",
        [i * 3 for i in range(120)],
    ),
    V(
        "Array.from({length: 101}, () => 'x')",
        "array",
        "[\n"
        + "".join("  " + ", ".join(["'x'"] * 12) + ",\n" for _ in range(8))
        + "  'x', 'x', 'x', 'x',\n  ... 1 more item\n]",
        ["x"] * 101,
    ),
    V("class MyArr extends Array {}; MyArr.from([1, 2])", "array", "MyArr(2) [ 1, 2 ]"),
    # -- objects
    V("({a: 1, b: [1, 2]})", "object", "{ a: 1, b: [ 1, 2 ] }", {"a": 1, "b": [1, 2]}),
    V("({})", "object", "{}", {}),
    V("{a: 1}", "object", "{ a: 1 }", {"a": 1}),
    V(
        "({'a-b': 1, $x: 2, _y: 3, 1: 4})",
        "object",
        "{ '1': 4, 'a-b': 1, '$x': 2, _y: 3 }",
        {"1": 4, "a-b": 1, "$x": 2, "_y": 3},
    ),
    V(
        "({'key with space': 1, ünï: 2})",
        "object",
        "{ 'key with space': 1, 'ünï': 2 }",
        {"key with space": 1, "ünï": 2},
    ),
    V("({s: 'it\\'s'})", "object", '{ s: "it\'s" }', {"s": "it's"}),
    V(
        "({s: 'say \"hi\", it\\'s'})",
        "object",
        '{ s: `say "hi", it\'s` }',
        {"s": 'say "hi", it\'s'},
    ),
    V("({s: 'tab\\there'})", "object", "{ s: 'tab\\there' }", {"s": "tab\there"}),
    V("({s: '\\u0001\\u007f'})", "object", "{ s: '\\x01\\x7F' }", {"s": "\x01\x7f"}),
    V("({s: 'back\\\\slash'})", "object", "{ s: 'back\\\\slash' }", {"s": "back\\slash"}),
    V("({s: '\\ud800'})", "object", "{ s: '\\ud800' }"),
    V(
        "({a: {b: {c: {d: 1}}}})",
        "object",
        "{ a: { b: { c: [Object] } } }",
        {"a": {"b": {"c": {"d": 1}}}},
    ),
    V("({a: {b: {c: {}}}})", "object", "{ a: { b: { c: {} } } }", {"a": {"b": {"c": {}}}}),
    V("({a: {b: {c: [1]}}})", "object", "{ a: { b: { c: [Array] } } }", {"a": {"b": {"c": [1]}}}),
    V("({[Symbol('k')]: 1})", "object", "{ [Symbol(k)]: 1 }"),
    V("({get x() { return 1 }})", "object", "{ x: [Getter] }"),
    V("({set x(v) {}})", "object", "{ x: [Setter] }"),
    V("({get x() { return 1 }, set x(v) {}})", "object", "{ x: [Getter/Setter] }"),
    V("Object.create(null)", "object", "[Object: null prototype] {}"),
    V("Object.assign(Object.create(null), {a: 1})", "object", "[Object: null prototype] { a: 1 }"),
    V("({u: undefined})", "object", "{ u: undefined }"),
    V("({n: NaN, i: Infinity})", "object", "{ n: NaN, i: Infinity }"),
    V("({big: 10n})", "object", "{ big: 10n }"),
    V("({f() {}})", "object", "{ f: [Function: f] }"),
    V("({arrow: () => 1})", "object", "{ arrow: [Function: arrow] }"),
    V("Object.defineProperty({}, 'hidden', {value: 1})", "object", "{}"),
    V("Object.assign(Object.create({inherited: 1}), {own: 2})", "object", "{ own: 2 }"),
    V(
        "({alpha: 'aaaaaaaaaa', beta: 'bbbbbbbbbb', gamma: 'cccccccccc', delta: 'dddddddddd',"
        " epsilon: 'eeeeeeeeee'})",
        "object",
        "{\n  alpha: 'aaaaaaaaaa',\n  beta: 'bbbbbbbbbb',\n  gamma: 'cccccccccc',\n"
        "  delta: 'dddddddddd',\n  epsilon: 'eeeeeeeeee'\n}",
        {
            "alpha": "a" * 10,
            "beta": "b" * 10,
            "gamma": "c" * 10,
            "delta": "d" * 10,
            "epsilon": "e" * 10,
        },
    ),
    V(
        "({text: 'a'.repeat(40) + '\\n' + 'b'.repeat(40)})",
        "object",
        "{\n  text: '" + "a" * 40 + "\\n' +\n    '" + "b" * 40 + "'\n}",
        {"text": "a" * 40 + "\n" + "b" * 40},
    ),
    V(
        "[['nested', ['deep', ['deeper', ['deepest']]]]]",
        "array",
        "[ [ 'nested', [ 'deep', [Array] ] ] ]",
        [["nested", ["deep", ["deeper", ["deepest"]]]]],
    ),
    V(
        "class Point { constructor() { this.x = 1; this.y = 2 } }; new Point()",
        "object",
        "Point { x: 1, y: 2 }",
    ),
    V("new (class Empty {})()", "object", "Empty {}"),
    V(
        "class Tagged { get [Symbol.toStringTag]() { return 'Tag' } }; new Tagged()",
        "object",
        "Tagged [Tag] {}",
    ),
    V("(function () { return arguments })(1, 2)", "object", "[Arguments] { '0': 1, '1': 2 }"),
    V("Math", "object", "Object [Math] {}"),
    V("JSON", "object", "Object [JSON] {}"),
    V("new Proxy({a: 1}, {})", "object", "{ a: 1 }", {"a": 1}),
    V("({[Symbol.for('nodejs.util.inspect.custom')]() { return 'custom!' }})", "object", "custom!"),
    # -- cycles
    V(
        "const cyc = {name: 'o'}; cyc.self = cyc; cyc",
        "object",
        "<ref *1> { name: 'o', self: [Circular *1] }",
    ),
    V("const cycArr = [1]; cycArr.push(cycArr); cycArr", "array", "<ref *1> [ 1, [Circular *1] ]"),
    V(
        "const par = {}; par.child = {parent: par}; par",
        "object",
        "<ref *1> { child: { parent: [Circular *1] } }",
    ),
    # -- Map, Set, weak collections
    V("new Map([['a', 1]])", "map", "Map(1) { 'a' => 1 }"),
    V("new Map()", "map", "Map(0) {}"),
    V("new Map([[{k: 1}, [1, 2]]])", "map", "Map(1) { { k: 1 } => [ 1, 2 ] }"),
    V("new Set([1, 2])", "set", "Set(2) { 1, 2 }"),
    V("new Set()", "set", "Set(0) {}"),
    V("new Set([[1, 2], {a: 1}])", "set", "Set(2) { [ 1, 2 ], { a: 1 } }"),
    V("[new Map([[1, {a: [1, 2]}]])]", "array", "[ Map(1) { 1 => { a: [Array] } } ]"),
    V("new WeakMap()", "object", "WeakMap { <items unknown> }"),
    V("new WeakSet()", "object", "WeakSet { <items unknown> }"),
    # -- dates and regular expressions
    V("new Date(0)", "date", "1970-01-01T00:00:00.000Z"),
    V("new Date('2020-01-01T00:00:00Z')", "date", "2020-01-01T00:00:00.000Z"),
    V("new Date(NaN)", "date", "Invalid Date"),
    V("({d: new Date(0)})", "object", "{ d: 1970-01-01T00:00:00.000Z }"),
    V("/ab+c/gi", "regexp", "/ab+c/gi"),
    V("[/x/, /y/m]", "array", "[ /x/, /y/m ]"),
    # -- functions and classes
    V("function foo() {}; foo", "function", "[Function: foo]"),
    V("(function () {})", "function", "[Function (anonymous)]"),
    V("(() => {})", "function", "[Function (anonymous)]"),
    V("(async function af() {})", "function", "[AsyncFunction: af]"),
    V("(function* gen() {})", "function", "[GeneratorFunction: gen]"),
    V("(async function* ag() {})", "function", "[AsyncGeneratorFunction: ag]"),
    V("class A {}; A", "function", "[class A]"),
    V("class A2 {}; class B2 extends A2 {}; B2", "function", "[class B2 extends A2]"),
    V("(class {})", "function", "[class (anonymous)]"),
    V("Math.max", "function", "[Function: max]"),
    V("(function f() {}).bind(null)", "function", "[Function: bound f]"),
    V("Object.assign(function g() {}, {extra: 1})", "function", "[Function: g] { extra: 1 }"),
    V("class S { static count = 3 }; S", "function", "[class S] { count: 3 }"),
    # -- errors: the stack, message line first
    V("new Error('boom')", "error", pattern("Error: boom{FRAMES}")),
    V("new TypeError('bad')", "error", pattern("TypeError: bad{FRAMES}")),
    V("({e: new RangeError('r')})", "object", pattern("{\n  e: RangeError: r{FRAMES}\n}")),
    V(
        "new Error('outer', {cause: new Error('inner')})",
        "error",
        pattern("Error: outer{FRAMES} {\n  [cause]: Error: inner{FRAMES}\n}"),
    ),
    V(
        "Object.assign(new Error('c'), {code: 'E_CODE'})",
        "error",
        pattern("Error: c{FRAMES} {\n  code: 'E_CODE'\n}"),
    ),
    V(
        "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError' } };"
        " new MyError('x')",
        "error",
        pattern("MyError: x{FRAMES}"),
    ),
    V(
        "class PlainError extends Error {}; new PlainError('p')",
        "error",
        pattern("PlainError: p{FRAMES}"),
    ),
    # -- boxed primitives
    V("new Number(3)", "object", "[Number: 3]"),
    V("new String('abc')", "object", "[String: 'abc']"),
    V("new Boolean(false)", "object", "[Boolean: false]"),
    V("Object(1n)", "object", "[BigInt: 1n]"),
    V("Object(Symbol('s'))", "object", "[Symbol: Symbol(s)]"),
    # -- binary data
    V("new Uint8Array([1, 2, 3])", "object", "Uint8Array(3) [ 1, 2, 3 ]"),
    V("new Float64Array(2)", "object", "Float64Array(2) [ 0, 0 ]"),
    V("new BigInt64Array([1n])", "object", "BigInt64Array(1) [ 1n ]"),
    V("new Uint8Array(0)", "object", "Uint8Array(0) []"),
    V("new ArrayBuffer(3)", "object", "ArrayBuffer { [Uint8Contents]: <00 00 00>, byteLength: 3 }"),
    V(
        "new DataView(new ArrayBuffer(2))",
        "object",
        "DataView {\n  byteLength: 2,\n  byteOffset: 0,\n"
        "  buffer: ArrayBuffer { [Uint8Contents]: <00 00>, byteLength: 2 }\n}",
    ),
    # -- promises: a snippet's own promise is settled; nested ones cannot be read
    V("Promise.resolve(3)", "number", "3", 3),
    V("Promise.resolve({ok: true})", "object", "{ ok: true }", {"ok": True}),
    V("({then(resolve) { resolve('thenable') }})", "string", "thenable", "thenable"),
    V("({p: Promise.resolve(1)})", "object", "{ p: Promise { <unknown> } }"),
    V("await Promise.resolve([1])", "array", "[ 1 ]", [1]),
    V(
        "await new Promise((resolve) => queueMicrotask(() => resolve('later')))",
        "string",
        "later",
        "later",
    ),
    # -- iterators QuickJS cannot peek into without consuming them
    V("[1, 2].values()", "object", "Object [Array Iterator] {}"),
    V("(function* () {})()", "object", "Object [Generator] {}"),
)


def _log(*texts: Text) -> tuple[tuple[str, Text], ...]:
    return tuple(("log", text) for text in texts)


C = ConsoleCase

CONSOLE: tuple[ConsoleCase, ...] = (
    C("console.log('hello')", _log("hello")),
    C("console.log('a', 1, true, null, undefined)", _log("a 1 true null undefined")),
    C("console.log({a: 1}, [1, 'x'])", _log("{ a: 1 } [ 1, 'x' ]")),
    C("console.log()", _log("")),
    C("console.log('%s is %d years', 'Bob', 42)", _log("Bob is 42 years")),
    C("console.log('%i', 42.9)", _log("42")),
    C("console.log('%f', '3.5')", _log("3.5")),
    C("console.log('%d', '42abc')", _log("NaN")),
    C("console.log('%i', '42abc')", _log("42")),
    C("console.log('%d', 5n)", _log("5n")),
    C("console.log('%j', {a: [1]})", _log('{"a":[1]}')),
    C("const circ = {}; circ.c = circ; console.log('%j', circ)", _log("[Circular]")),
    C("console.log('%o', [1])", _log("[ 1, [length]: 1 ]")),
    C("console.log('%O', {a: {b: {c: {d: 1}}}})", _log("{ a: { b: { c: [Object] } } }")),
    C("console.log('%s', {a: {b: 1}})", _log("{ a: [Object] }")),
    C("console.log('%s', [1, [2, [3]]])", _log("[ 1, [Array] ]")),
    C("console.log('%s', 10n, Symbol('q'))", _log("10n Symbol(q)")),
    C("console.log('%s', -0)", _log("-0")),
    C("console.log('%s', () => 1)", _log("() => 1")),
    C("console.log('%s', new (class Foo { toString() { return 'custom' } })())", _log("custom")),
    C("console.log('100%%')", _log("100%%")),
    C("console.log('%d%%', 50)", _log("50%")),
    C("console.log('%c styled', 'color: red')", _log(" styled")),
    C("console.log('%s', 'a', 'extra', 3)", _log("a extra 3")),
    C("console.log('%x', 1)", _log("%x 1")),
    C("console.log('%s')", _log("%s")),
    C("console.log(-0, 0, 1n)", _log("-0 0 1n")),
    C("console.log(Symbol('s'))", _log("Symbol(s)")),
    C("console.log([1, 2, 3].map(String))", _log("[ '1', '2', '3' ]")),
    C("console.log('a\\u0000b')", _log("a\ufffdb")),
    C("console.log('\\ud800!')", _log("\ufffd!")),
    C("console.log(new Error('e'))", _log(pattern("Error: e{FRAMES}"))),
    C("const {log} = console; log('detached')", _log("detached")),
    C(
        "console.info('i'); console.debug('d'); console.warn('w'); console.error('e')",
        (("info", "i"), ("debug", "d"), ("warn", "w"), ("error", "e")),
    ),
    C("console.error('%s: %s', 'E', 'bad')", (("error", "E: bad"),)),
    C("console.dirxml('x', 1)", _log("x 1")),
    C("console.dir({a: 'x'})", _log("{ a: 'x' }")),
    C("console.dir('str')", _log("'str'")),
    C("console.dir({a: {b: {c: 1}}}, {depth: 0})", _log("{ a: [Object] }")),
    C("console.assert(true, 'never shown')", ()),
    C("console.assert(false)", (("warn", "Assertion failed"),)),
    C("console.assert(false, 'msg %d', 1)", (("warn", "Assertion failed: msg 1"),)),
    C("console.assert(0, {a: 1})", (("warn", "Assertion failed { a: 1 }"),)),
    C(
        "console.count(); console.count(); console.count('x'); console.countReset();"
        " console.count()",
        _log("default: 1", "default: 2", "x: 1", "default: 1"),
    ),
    C("console.countReset('nope')", (("warn", "Warning: Count for 'nope' does not exist"),)),
    C(
        "console.group('G'); console.log('in'); console.group(); console.log('deeper\\nline2');"
        " console.groupEnd(); console.groupEnd(); console.log('out')",
        _log("G", "  in", "    deeper\n    line2", "out"),
    ),
    C(
        "console.groupCollapsed('C'); console.warn('w'); console.groupEnd(); console.groupEnd()",
        (("log", "C"), ("warn", "  w")),
    ),
    C(
        "console.table([{a: 1, b: 'Y'}, {a: 'Z', b: 2}])",
        _log(
            "┌─────────┬─────┬─────┐\n"
            "│ (index) │ a   │ b   │\n"
            "├─────────┼─────┼─────┤\n"
            "│ 0       │ 1   │ 'Y' │\n"
            "│ 1       │ 'Z' │ 2   │\n"
            "└─────────┴─────┴─────┘"
        ),
    ),
    C(
        "console.table([1, 'two', {x: 1}])",
        _log(
            "┌─────────┬───┬────────┐\n"
            "│ (index) │ x │ Values │\n"
            "├─────────┼───┼────────┤\n"
            "│ 0       │   │ 1      │\n"
            "│ 1       │   │ 'two'  │\n"
            "│ 2       │ 1 │        │\n"
            "└─────────┴───┴────────┘"
        ),
    ),
    C(
        "console.table({r1: {c: 1}, r2: {c: 2}}, ['c'])",
        _log(
            "┌─────────┬───┐\n"
            "│ (index) │ c │\n"
            "├─────────┼───┤\n"
            "│ r1      │ 1 │\n"
            "│ r2      │ 2 │\n"
            "└─────────┴───┘"
        ),
    ),
    C(
        "console.table(new Map([['k', {v: 1}]]))",
        _log(
            "┌───────────────────┬─────┬──────────┐\n"
            "│ (iteration index) │ Key │ Values   │\n"
            "├───────────────────┼─────┼──────────┤\n"
            "│ 0                 │ 'k' │ { v: 1 } │\n"
            "└───────────────────┴─────┴──────────┘"
        ),
    ),
    C(
        "console.table(new Set(['s']))",
        _log(
            "┌───────────────────┬────────┐\n"
            "│ (iteration index) │ Values │\n"
            "├───────────────────┼────────┤\n"
            "│ 0                 │ 's'    │\n"
            "└───────────────────┴────────┘"
        ),
    ),
    C("console.table('not tabular')", _log("not tabular")),
    C("console.time('t'); console.timeEnd('t')", _log(re.compile(r"t: \d+(\.\d+)?ms"))),
    C(
        "console.time(); console.timeLog(undefined, 'data', 1); console.timeEnd()",
        _log(re.compile(r"default: \d+(\.\d+)?ms data 1"), re.compile(r"default: \d+(\.\d+)?ms")),
    ),
    C(
        "console.timeEnd('missing')",
        (("warn", "Warning: No such label 'missing' for console.timeEnd()"),),
    ),
    C(
        "console.time('dup'); console.time('dup'); console.timeEnd('dup')",
        (
            ("warn", "Warning: Label 'dup' already exists for console.time()"),
            ("log", re.compile(r"dup: \d+(\.\d+)?ms")),
        ),
    ),
    C("console.trace('here %d', 1)", (("error", pattern("Trace: here 1{FRAMES}")),)),
    C("console.trace()", (("error", pattern("Trace{FRAMES}")),)),
    C("Promise.resolve().then(() => console.log('microtask')); 'value'", _log("microtask")),
)


E = ExceptionCase

EXCEPTIONS: tuple[ExceptionCase, ...] = (
    E("throw new Error('boom')", "Error: boom", "Error", pattern("Error: boom{FRAMES}")),
    E("null.x", "TypeError: cannot read property 'x' of null", "TypeError"),
    E("undefinedVariable", "ReferenceError: undefinedVariable is not defined", "ReferenceError"),
    E("let = ;", "SyntaxError: unexpected token in expression: ';'", "SyntaxError"),
    E(
        "JSON.parse('{')",
        "SyntaxError: Expected property name or '}' in JSON at position 1 (line 1 column 2)",
        "SyntaxError",
    ),
    E("[].reduce((a, b) => a)", "TypeError: empty array", "TypeError"),
    E("new Array(-1)", "RangeError: invalid array length", "RangeError"),
    E("BigInt(1.5)", "RangeError: cannot convert to BigInt: not an integer", "RangeError"),
    E("Symbol() + ''", "TypeError: cannot convert symbol to string", "TypeError"),
    E("(function f() { f() })()", "RangeError: Maximum call stack size exceeded", "RangeError"),
    E("throw 42", "Uncaught 42"),
    E("throw 'text'", "Uncaught 'text'"),
    E("throw {code: 1}", "Uncaught { code: 1 }"),
    E("throw null", "Uncaught null"),
    E("throw undefined", "Uncaught undefined"),
    E("throw Symbol('t')", "Uncaught Symbol(t)"),
    E("throw new Error('')", "Error", "Error"),
    E(
        "const renamed = new Error('m'); renamed.name = 'Custom'; throw renamed",
        "Custom: m",
        "Custom",
    ),
    E(
        "class E2 extends Error { constructor() { super('custom'); this.name = 'E2' } };"
        " throw new E2()",
        "E2: custom",
        "E2",
        pattern("E2: custom{FRAMES}"),
    ),
    E(
        "throw Object.assign(new Error('x'), {code: 'E1'})",
        "Error: x",
        "Error",
        pattern("Error: x{FRAMES} {\n  code: 'E1'\n}"),
    ),
    E("Promise.reject(42)", "Uncaught 42"),
    E("Promise.reject(null)", "Uncaught null"),
    E("await Promise.reject(null)", "Uncaught null"),
    E("Promise.reject(new Error('nope'))", "Error: nope", "Error"),
    E("await Promise.reject(new RangeError('r'))", "RangeError: r", "RangeError"),
    E("await null; throw new TypeError('after await')", "TypeError: after await", "TypeError"),
)


S = SessionCase

SESSIONS: tuple[SessionCase, ...] = (
    S(
        "let redeclared",
        (("let x = 1", "undefined"), ("x", "1"), ("let x = 2", "undefined"), ("x", "2")),
    ),
    S("const redeclared", (("const c = 1", "undefined"), ("const c = 2; c", "2"), ("c", "2"))),
    S(
        "class redeclared",
        (
            ("class K {}", "undefined"),
            ("class K { m() { return 2 } }", "undefined"),
            ("new K().m()", "2"),
        ),
    ),
    S(
        "function redeclared",
        (
            ("function f() { return 1 }", "undefined"),
            ("function f() { return 2 }", "undefined"),
            ("f()", "2"),
        ),
    ),
    S("let after var", (("var z = 1", "undefined"), ("let z = 2", "undefined"), ("z", "2"))),
    S("var after let", (("let q = 1", "undefined"), ("var q = 3", "undefined"), ("q", "3"))),
    S(
        "let without value resets",
        (("let y = 1", "undefined"), ("let y", "undefined"), ("y", "undefined")),
    ),
    S(
        "destructuring",
        (
            ("let {a, b: [c]} = {a: 1, b: [2]}", "undefined"),
            ("[a, c]", "[ 1, 2 ]"),
            ("const [p, ...rest] = [1, 2, 3]", "undefined"),
            ("rest", "[ 2, 3 ]"),
        ),
    ),
    S(
        "destructuring defaults",
        (("const {d = 4, e: {f} = {f: 5}} = {}", "undefined"), ("[d, f]", "[ 4, 5 ]")),
    ),
    S("await declaration", (("const v = await Promise.resolve(5)", "undefined"), ("v", "5"))),
    S("await value of last expression", (("await 1; let w = 2; w + 1", "3"), ("w", "2"))),
    S(
        "await with function",
        (("const t = await 1; function g() { return t * 2 }", "undefined"), ("g()", "2")),
    ),
    S(
        "await hoists functions",
        (("h(); await 0; function h() { return 'h' }", "undefined"), ("h()", "h")),
    ),
    S("await with class", (("await null; class AC { static v = 7 }", "undefined"), ("AC.v", "7"))),
    S(
        "await redeclares",
        (("let r = 1", "undefined"), ("let r = await 2", "undefined"), ("r", "2")),
    ),
    S(
        "for await",
        (
            ("for await (const x of [Promise.resolve(1)]) { globalThis.seen = x }", "undefined"),
            ("seen", "1"),
        ),
    ),
    S(
        "await in nested function only",
        (("const fn = async () => await 1; typeof fn", "function"), ("await fn()", "1")),
    ),
    S("block is a block", (("{ let inner = 1; inner }", "1"), ("typeof inner", "undefined"))),
    S(
        "nested let stays local",
        (("if (true) { let scoped = 1 }", "undefined"), ("typeof scoped", "undefined")),
    ),
    S(
        "regex and division",
        (("let ratio = 10 / 2 / 5; let re = /\\/+let x/g; [ratio, re]", "[ 1, /\\/+let x/g ]"),),
    ),
    S("template literal", (("let tpl = `let ${'x'} = ${`${1 + 1}`}`; tpl", "let x = 2"),)),
    S(
        "comments",
        (
            ("// let commented = 1\nlet real = /* let fake = 2 */ 3; real", "3"),
            ("typeof commented + typeof fake", "undefinedundefined"),
        ),
    ),
    S("keywords in strings", (("let s1 = 'const x = 1'; s1", "const x = 1"),)),
    S("multi-line await", (("await 1\nlet multi = 1,\n  other = 2\nmulti + other", "3"),)),
    S(
        "error leaves the session usable",
        (("let kept = 1", "undefined"), ("kept.x.y", None), ("kept", "1")),
    ),
)
