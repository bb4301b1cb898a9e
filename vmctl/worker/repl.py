"""How a REPL snippet, or a script file, becomes source the engine evaluates.

Interface (fixed; the worker's runtime relies on it): ``compile_snippet(code)``
and ``compile_script(code)`` (a library, a startup file, a file run that is not
a module) return a :class:`Snippet`, which the runtime evaluates as a global
script. When ``is_async`` is false its completion value is its value. When
``is_async`` is true its completion value is a promise that resolves to an
object ``{value: <the snippet's value>}`` (or rejects with what the snippet
threw); the runtime runs the event loop (jobs and timers), under the request's
limits, until it settles. A snippet or file whose value is a promise reports
what the promise settles to: for ``is_async`` false the runtime passes the
completion value through the prelude's ``__vmctl.settle(value)``, which
returns the same kind of promise of ``{value}`` (see prelude.js), and settles
that.

What the rewrite does, and why (the Node REPL is the model):

- Top-level ``let``, ``const`` and ``class`` declarations become ``var``
  bindings, so they are properties of the global object that a later snippet
  can see *and declare again*; plain QuickJS refuses the second ``let x`` with
  ``SyntaxError: redeclaration of 'x'``. ``const`` therefore stays assignable
  (as it does across snippets in the Node REPL and browser consoles); a
  ``let x`` without initialiser resets ``x`` to ``undefined``. Keywords are
  replaced in place (``const`` by ``var`` plus two spaces) so that line and
  column numbers in stack traces still point into the user's text; only a
  class declaration shifts the rest of its line.
- A snippet with a top-level ``await`` (outside any function or class body) is
  wrapped as ``var <names>; (async () => { ... })()``. Its declarations become
  assignments to the hoisted global ``var`` names (``let {a} = o`` becomes
  ``void (({a} = o))``), top-level functions are copied to the global object,
  and the last expression statement becomes ``return {value: await (expr)}``
  (``{value: undefined}`` when the snippet ends with anything else, as in
  Node). The wrapper starts on the snippet's first line, so line numbers hold.
- A snippet that is an object literal (``{a: 1}``) is read as an expression,
  not as a block with a label, as Node does.
- Code the parser cannot read is passed through unchanged, so the engine
  reports the syntax error at the user's own line and column.

A script file gets the same rewrites: its top-level ``let``, ``const`` and
``class`` become globals that later snippets and files see and may declare
again, so running a file twice, or declaring in the REPL a name a library
declared, works (as Node's REPL ``.load`` does); a file with a top-level
``await`` is wrapped as such a snippet is, so its declarations are globals
too (Node would run it as a module, whose declarations are its own: a
``.mjs`` file is that). A file that is one ``{...}`` is a block, not an object.

Scanning uses tree-sitter's JavaScript grammar (a maintained, incremental
parser that follows the language's newer syntax) instead of a home-grown
tokenizer: telling a regex from a division, or a template literal's ``${``
from a block, is exactly what a real grammar gets right.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import tree_sitter

    _Predicate = Callable[[tree_sitter.Node], bool]

# Nodes whose insides are a new function scope: an ``await`` or ``return``
# there is not at the top level of the snippet.
_FUNCTION_SCOPES = frozenset(
    {
        "function_declaration",
        "function_expression",
        "generator_function_declaration",
        "generator_function",
        "arrow_function",
        "method_definition",
        "class_body",
    }
)
_FUNCTION_DECLARATIONS = frozenset({"function_declaration", "generator_function_declaration"})
_NOT_STATEMENTS = frozenset({"comment", "empty_statement", "hash_bang_line"})


@functools.cache
def load_parser() -> tree_sitter.Parser:
    """The JavaScript parser, made on first use.

    Importing tree-sitter and its grammar takes about 10 ms, which the worker's handshake
    need not wait for: the worker calls this right after sending it.
    """
    import tree_sitter
    import tree_sitter_javascript

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))


class Snippet(NamedTuple):
    source: str
    is_async: bool


def compile_snippet(code: str) -> Snippet:
    """Turn one REPL input into a global script with console semantics (see module doc)."""
    return read_snippet(code) or Snippet(code, False)


def read_snippet(code: str) -> Snippet | None:
    """:func:`compile_snippet`'s rewrite, or None when the grammar cannot read ``code`` (the
    worker then tries it as TypeScript: one parse for a snippet that is JavaScript)."""
    code = _as_object_literal(code)
    data = _encode(code)
    program = load_parser().parse(data).root_node
    if program.has_error:
        return None
    if _contains_top_level(program, _is_await) and not _contains_top_level(program, _is_return):
        return Snippet(_async_source(data, program), True)
    return Snippet(_sync_source(data, program), False)


def compile_script(code: str) -> Snippet:
    """A script file with the REPL's top-level declarations, and its top-level ``await``
    wrapped as a snippet's is (see module doc)."""
    data = _encode(code)
    program = load_parser().parse(data).root_node
    if program.has_error:
        return Snippet(code, False)
    if _contains_top_level(program, _is_await) and not _contains_top_level(program, _is_return):
        return Snippet(_async_source(data, program), True)
    return Snippet(_sync_source(data, program), False)


def parses(code: str) -> bool:
    """Whether ``code`` is JavaScript the grammar reads without an error."""
    return not load_parser().parse(_encode(code)).root_node.has_error


def is_module(code: str) -> bool:
    """Whether a file's text is an ES module by its syntax: an ``import`` or ``export``
    declaration, or ``import.meta``, as Node (22 and later) decides for a file whose type no
    extension or ``package.json`` declares. Text with a syntax error is not."""
    program = load_parser().parse(_encode(code)).root_node
    if program.has_error:
        return False
    if any(s.type in ("import_statement", "export_statement") for s in program.named_children):
        return True
    pending = list(program.named_children)
    while pending:
        node = pending.pop()
        if node.type == "meta_property" and _text(node) == "import.meta":
            return True
        pending.extend(node.named_children)
    return False


def _as_object_literal(code: str) -> str:
    stripped = code.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return code
    wrapped = f"({code})"
    program = load_parser().parse(_encode(wrapped)).root_node
    if program.has_error or program.named_child_count != 1:
        return code
    return wrapped


class _Edits:
    """Text insertions and replacements at byte offsets of the original source."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._edits: list[tuple[int, int, int, str]] = []

    def replace(self, start: int, end: int, text: str) -> None:
        self._edits.append((start, len(self._edits), end, text))

    def insert(self, at: int, text: str) -> None:
        self.replace(at, at, text)

    def apply(self) -> str:
        out: list[bytes] = []
        position = 0
        for start, _order, end, text in sorted(self._edits):
            out.append(self._data[position:start])
            out.append(_encode(text))
            position = end
        out.append(self._data[position:])
        return b"".join(out).decode("utf-8", "surrogatepass")


def _sync_source(data: bytes, program: tree_sitter.Node) -> str:
    edits = _Edits(data)
    for statement in program.named_children:
        if statement.type == "lexical_declaration":
            kind = _field(statement, "kind")
            width = kind.end_byte - kind.start_byte
            edits.replace(kind.start_byte, kind.end_byte, "var".ljust(width))
            if kind.type == "let":
                for declarator in _declarators(statement):
                    if declarator.child_by_field_name("value") is None:
                        edits.insert(declarator.end_byte, " = void 0")
        elif statement.type == "class_declaration":
            edits.insert(statement.start_byte, f"var {_text(_field(statement, 'name'))} = ")
            edits.insert(statement.end_byte, ";")
    return edits.apply()


def _async_source(data: bytes, program: tree_sitter.Node) -> str:
    edits = _Edits(data)
    names: dict[str, None] = {}  # ordered set
    statements = [s for s in program.named_children if s.type not in _NOT_STATEMENTS]
    for statement in statements:
        if statement.type in ("lexical_declaration", "variable_declaration"):
            names.update(dict.fromkeys(_declare_as_assignments(edits, statement)))
        elif statement.type == "class_declaration":
            name = _text(_field(statement, "name"))
            names[name] = None
            edits.insert(statement.start_byte, f"{name} = ")
            edits.insert(statement.end_byte, ";")
        elif statement.type in _FUNCTION_DECLARATIONS:
            name = _text(_field(statement, "name"))
            names[name] = None
            # The declaration stays (hoisted inside the wrapper); this copies it out.
            edits.insert(statement.start_byte, f"this.{name} = {name}; ")
    for hash_bang in (s for s in program.named_children if s.type == "hash_bang_line"):
        edits.replace(hash_bang.start_byte, hash_bang.start_byte + 2, "//")

    last = statements[-1] if statements else None
    if last is not None and last.type == "expression_statement":
        expression = last.named_children[0]
        edits.insert(expression.start_byte, "return {value: await (")
        edits.insert(expression.end_byte, ")}")
        ending = "\n})()"
    else:
        ending = "\nreturn {value: void 0};\n})()"
    hoisted = f"var {', '.join(names)}; " if names else ""
    return f"{hoisted}(async () => {{{edits.apply()}{ending}"


def _declare_as_assignments(edits: _Edits, declaration: tree_sitter.Node) -> list[str]:
    """``let a = 1, {b} = o`` -> ``void ((a = 1), ({b} = o))``; returns the bound names."""
    kind = _field(declaration, "kind") if declaration.type == "lexical_declaration" else None
    keyword = kind if kind is not None else declaration.children[0]
    edits.replace(keyword.start_byte, keyword.end_byte, "void (")
    names: list[str] = []
    declarators = _declarators(declaration)
    for declarator in declarators:
        target = _field(declarator, "name")
        names.extend(_bound_names(target))
        if declarator.child_by_field_name("value") is not None:
            edits.insert(declarator.start_byte, "(")
            edits.insert(declarator.end_byte, ")")
        elif keyword.type == "var":
            # ``var x;`` keeps the value x already has.
            edits.replace(declarator.start_byte, declarator.end_byte, "void 0")
        else:
            edits.insert(declarator.start_byte, "(")
            edits.insert(declarator.end_byte, " = void 0)")
    edits.insert(declarators[-1].end_byte, ")")
    return names


def _bound_names(pattern: tree_sitter.Node) -> Iterator[str]:
    """The identifiers a binding pattern declares (not its defaults or computed keys)."""
    kind = pattern.type
    if kind in ("identifier", "shorthand_property_identifier_pattern"):
        yield _text(pattern)
    elif kind in ("object_pattern", "array_pattern"):
        for child in pattern.named_children:
            yield from _bound_names(child)
    elif kind == "pair_pattern":
        yield from _bound_names(_field(pattern, "value"))
    elif kind in ("assignment_pattern", "object_assignment_pattern"):
        yield from _bound_names(_field(pattern, "left"))
    elif kind == "rest_pattern":
        yield from _bound_names(pattern.named_children[0])


def _declarators(declaration: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [c for c in declaration.named_children if c.type == "variable_declarator"]


def _contains_top_level(program: tree_sitter.Node, predicate: _Predicate) -> bool:
    """Whether a node outside every function and class body satisfies ``predicate``."""
    pending = list(program.named_children)
    while pending:
        node = pending.pop()
        if predicate(node):
            return True
        if node.type not in _FUNCTION_SCOPES:
            pending.extend(node.children)
    return False


def _is_await(node: tree_sitter.Node) -> bool:
    if node.type == "await_expression":
        return True
    # Outside an async function the grammar reads ``await (x)`` as a call of a function named
    # ``await``; at a snippet's top level it means what it means in the Node REPL.
    if node.type == "call_expression":
        callee = node.child_by_field_name("function")
        if callee is not None and callee.type == "identifier" and _text(callee) == "await":
            return True
    # ``for await (x of y)``: the keyword is an anonymous child of the loop.
    return node.type == "for_in_statement" and any(c.type == "await" for c in node.children)


def _is_return(node: tree_sitter.Node) -> bool:
    return node.type == "return_statement"


def _field(node: tree_sitter.Node, name: str) -> tree_sitter.Node:
    child = node.child_by_field_name(name)
    if child is None:  # pragma: no cover - the grammar guarantees these fields
        raise ValueError(f"{node.type} without {name}")
    return child


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogatepass")


def _encode(text: str) -> bytes:
    # A lone surrogate (legal in a JS string literal) must survive the round trip.
    return text.encode("utf-8", "surrogatepass")
