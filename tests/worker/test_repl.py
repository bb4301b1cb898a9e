"""compile_snippet: the source it produces, and what that source does in a bare context.

These run in-process and fast; the same behaviour through the worker is in
test_previews.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import quickjs

from vmctl.worker.repl import Snippet, compile_script, compile_snippet
from vmctl.worker.session import prelude_source
from vmctl.worker.webapis import vendor_source

from .preview_cases import SESSIONS, SessionCase

PRELUDE = prelude_source()

# Runs a compiled snippet the way the runtime does (settling a sync snippet's value
# through __vmctl.settle) and leaves the outcome, as JSON text, in a global.
_HARNESS = """
globalThis.__test_run = (source, isAsync) => {
  globalThis.__test_outcome = null;
  const done = (kind, text) => { globalThis.__test_outcome = `{"${kind}":${text}}`; };
  try {
    const completion = (0, eval)(source);
    const promise = isAsync ? completion : __vmctl.settle(completion);
    promise.then((box) => done("value", __vmctl.describe(box.value)),
                 (thrown) => done("exception", __vmctl.exception(thrown)));
  } catch (thrown) {
    done("exception", __vmctl.exception(thrown));
  }
};
"""


class InProcessSession:
    """A context with the prelude, fed compiled snippets: a session without the worker."""

    def __init__(self) -> None:
        self._context = quickjs.Context()
        self._context.add_callable("__vmctl_host_console", lambda level, text: None)
        self._context.eval(vendor_source())  # what the prelude's web APIs are made from
        self._context.eval(PRELUDE)
        self._context.eval(_HARNESS)

    def run(self, code: str) -> dict[str, Any]:
        """``{"value": <describe payload>}`` or ``{"exception": <exception payload>}``."""
        snippet = compile_snippet(code)
        arguments = f"{json.dumps(snippet.source)}, {json.dumps(snippet.is_async)}"
        self._context.eval(f"__test_run({arguments})")
        while self._context.execute_pending_job():
            pass
        text = self._context.eval("globalThis.__test_outcome")
        assert text is not None, f"never settled: {code!r}"
        outcome: dict[str, Any] = json.loads(text)
        return outcome


# -- the source ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "source"),
    [
        ("let x = 1", "var x = 1"),
        ("const y = 2, z = 3", "var   y = 2, z = 3"),  # columns kept
        ("let a, b = 1", "var a = void 0, b = 1"),
        ("class A {}", "var A = class A {};"),
        ("class A {}\n(1)", "var A = class A {};\n(1)"),
        ("var v = 1", "var v = 1"),
        ("function f() {}", "function f() {}"),
        ("{a: 1}", "({a: 1})"),
        ("  {a: 1, b: [2]}\n", "(  {a: 1, b: [2]}\n)"),
        ("{ let inner = 1; inner }", "{ let inner = 1; inner }"),
        ("if (x) { let y = 1 }", "if (x) { let y = 1 }"),
        ("for (let i = 0; i < 1; i++) {}", "for (let i = 0; i < 1; i++) {}"),
        ("const é = 'ü'; é", "var   é = 'ü'; é"),
    ],
)
def test_sync_snippets_declare_globals_that_can_be_declared_again(code: str, source: str) -> None:
    assert compile_snippet(code) == Snippet(source, False)


@pytest.mark.parametrize(
    "code",
    [
        "'let x = await y'",
        "`${'await'} let`",
        "// await x\nlet_ = 1",
        "/* let x = await 1 */ 2",
        "/await let/.test(s)",
        "a / await_ / 2",
        "async function f() { await g() }",
        "const h = async () => await 1",
        "class C { async m() { await 1 } }",
        "({ async m() { await 1 } })",
    ],
)
def test_await_only_counts_at_the_top_level_of_code(code: str) -> None:
    assert compile_snippet(code).is_async is False


def test_top_level_await_wraps_the_snippet_and_returns_the_last_expression() -> None:
    snippet = compile_snippet("const v = await p;\nv + 1")
    assert snippet == Snippet(
        "var v; (async () => {void ( (v = await p));\nreturn {value: await (v + 1)}\n})()", True
    )


def test_an_async_snippet_ending_in_a_declaration_has_the_value_undefined() -> None:
    snippet = compile_snippet("await 1; let {a, b: [c = 1], ...rest} = o")
    assert snippet.source == (
        "var a, c, rest; (async () => {await 1; void ( ({a, b: [c = 1], ...rest} = o))"
        "\nreturn {value: void 0};\n})()"
    )


def test_an_async_snippet_copies_its_functions_and_classes_to_the_global_object() -> None:
    snippet = compile_snippet("await 0\nfunction f() {}\nclass K {}")
    assert snippet.source == (
        "var f, K; (async () => {await 0\nthis.f = f; function f() {}\nK = class K {};"
        "\nreturn {value: void 0};\n})()"
    )


@pytest.mark.parametrize(
    "code",
    [
        "for await (const x of xs) {}",
        "class K extends (await base()) {}",
        "if (ready) { await go() }",
        "label: { await 1 }",
    ],
)
def test_await_outside_functions_makes_the_snippet_async(code: str) -> None:
    assert compile_snippet(code).is_async is True


@pytest.mark.parametrize("code", ["foo(", "let = ;", "return await 1", "await", "let x = 1 +"])
def test_code_that_cannot_be_rewritten_is_passed_through(code: str) -> None:
    assert compile_snippet(code) == Snippet(code, False)


def test_a_lone_surrogate_in_the_code_survives() -> None:
    assert compile_snippet("let s = '\ud800'") == Snippet("var s = '\ud800'", False)


def test_the_wrapper_keeps_every_line_where_the_user_wrote_it() -> None:
    code = "const a = 1\nconst {b} = {b: await 2}\nclass C {}\nfunction f() {}\na + b"
    source = compile_snippet(code).source
    for number, line in enumerate(code.splitlines()):
        assert line.split(" = ")[-1] in source.splitlines()[number]


@pytest.mark.parametrize(
    ("code", "source"),
    [
        (
            "const a = 1;\nlet b;\nclass C {}\n",
            "var   a = 1;\nvar b = void 0;\nvar C = class C {};\n",
        ),
        ("#!/usr/bin/env node\nlet x = 1", "#!/usr/bin/env node\nvar x = 1"),
        ("'use strict';\nconst s = 1", "'use strict';\nvar   s = 1"),
        ("{a: 1}", "{a: 1}"),  # a block with a label, as in any script
        ("foo(", "foo("),
    ],
)
def test_script_files_declare_like_snippets_and_stay_scripts(code: str, source: str) -> None:
    assert compile_script(code) == Snippet(source, False)


def test_a_script_file_with_top_level_await_is_wrapped_as_a_snippet_is() -> None:
    code = "let x = 1;\nawait x;\nx + 1"
    assert compile_script(code) == compile_snippet(code)
    assert compile_script(code).is_async


# -- what the source does -----------------------------------------------------------------


@pytest.mark.parametrize("case", SESSIONS, ids=[c.name for c in SESSIONS])
def test_snippets_build_on_each_other_in_process(case: SessionCase) -> None:
    session = InProcessSession()
    for code, expected in case.steps:
        outcome = session.run(code)
        if expected is None:
            assert "exception" in outcome, code
        else:
            assert outcome.get("value", outcome)["preview"] == expected, code


def test_strict_mode_snippets_still_declare_globals() -> None:
    session = InProcessSession()
    assert session.run("'use strict'; let s = await 1; const t = 2")["value"]["type"] == "undefined"
    assert session.run("'use strict'; [s, t]")["value"]["preview"] == "[ 1, 2 ]"
