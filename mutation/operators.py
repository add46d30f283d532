"""Where a module can be mutated, and how: one :class:`Mutant` per small change.

The changes are spliced into the source text (not re-printed from the tree), so
everything else in the file, line numbers included, stays as it was.

Operators: comparisons swapped or bounded (``<`` to ``<=``…), ``is``/``is not``,
``in``/``not in``, ``and``/``or``, arithmetic swapped, ``not`` removed,
``True``/``False`` flipped, numbers off by one, strings and bytes changed (the
HKDF labels included), a decorator removed, a statement removed, a returned
value replaced by ``None``. Docstrings, annotations, ``if TYPE_CHECKING:``
blocks and the string arguments of the configured calls are left alone, and so
is any line marked ``# pragma: no mutate``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

COMPARISONS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.GtE),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
#: Statements whose removal is a meaningful mutant (assignments only to attributes
#: and items: a local never assigned is a NameError, killed by any test that runs it).
REMOVABLE = (ast.Expr, ast.Raise, ast.AugAssign, ast.Assign, ast.Delete, ast.Continue, ast.Break)
NO_MUTATE = "pragma: no mutate"


@dataclass(frozen=True)
class Mutant:
    """One change: the text between two positions replaced by another."""

    module: str
    path: str
    operator: str
    lineno: int
    col: int
    end_lineno: int
    end_col: int
    original: str
    replacement: str
    #: The source lines whose tests run against the mutant: its statement's, or for
    #: code run at import time, those of the function, class or module it belongs to.
    scope: tuple[int, int]
    #: Whether the mutated code runs when the module is imported (a decorator, a
    #: default, a class or module body), not when a function is called.
    import_time: bool
    #: The lines of each function and class around the mutant, innermost last: their
    #: tests stand for a statement no test runs itself, as one in a function called
    #: only at import (a decorator's own body, a descriptor's ``__init__``).
    enclosing: tuple[tuple[int, int], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.path}:{self.lineno}:{self.col}:{self.operator}:{self.replacement}"

    def describe(self) -> str:
        before = " ".join(self.original.split())
        after = " ".join(self.replacement.split()) or "(removed)"
        return f"{self.path}:{self.lineno} [{self.operator}] {before} -> {after}"

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        start = _offset(lines, self.lineno, self.col)
        end = _offset(lines, self.end_lineno, self.end_col)
        return source[:start] + self.replacement + source[end:]


def _offset(lines: list[str], lineno: int, col: int) -> int:
    # ast columns count UTF-8 bytes.
    head = sum(len(line) for line in lines[: lineno - 1])
    return head + len(lines[lineno - 1].encode()[:col].decode())


def find_mutants(
    source: str, module: str, path: str, skip_strings_in: frozenset[str] = frozenset()
) -> list[Mutant]:
    """Every mutant of ``source`` that still compiles."""
    finder = _Finder(source, module, path, skip_strings_in)
    finder.visit(ast.parse(source))
    mutants = []
    seen = set()
    for mutant in finder.mutants:
        if mutant.key in seen or NO_MUTATE in source.splitlines()[mutant.lineno - 1]:
            continue
        seen.add(mutant.key)
        try:
            compile(mutant.apply(source), path, "exec", dont_inherit=True)
        except SyntaxError:
            continue
        mutants.append(mutant)
    return mutants


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str, module: str, path: str, skip: frozenset[str]) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.module = module
        self.path = path
        self.skip = skip
        self.mutants: list[Mutant] = []
        #: Innermost function body being visited: mutants there run when it runs.
        self.in_body = False
        #: Lines whose tests stand for code that runs at import time.
        self.scope: tuple[int, int] = (1, len(self.lines))
        #: The statement being visited in a function body (its first line, for a block).
        self.statement: tuple[int, int] = (1, 1)
        #: The functions and classes being visited, outermost first.
        self.enclosing: tuple[tuple[int, int], ...] = ()
        self.skipped_strings: set[int] = set()

    # -- bookkeeping ---------------------------------------------------------

    def _text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ""

    def _add(self, operator: str, node: ast.AST, replacement: str, original: str = "") -> None:
        lineno, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
        end_lineno, end_col = node.end_lineno, node.end_col_offset  # type: ignore[attr-defined]
        self.mutants.append(
            Mutant(
                module=self.module,
                path=self.path,
                operator=operator,
                lineno=lineno,
                col=col,
                end_lineno=end_lineno,
                end_col=end_col,
                original=original or self._text(node),
                replacement=replacement,
                scope=self.statement if self.in_body else self.scope,
                import_time=not self.in_body,
                enclosing=self.enclosing,
            )
        )

    def _replace(self, operator: str, node: ast.AST, new: ast.AST) -> None:
        self._add(operator, node, ast.unparse(new))

    # -- scopes ---------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> None:
        self._visit_body(node.body)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer = self.scope
        self.scope = (node.lineno, node.end_lineno or node.lineno)
        for decorator in node.decorator_list:
            self._remove_decorator(decorator)
            self.visit(decorator)
        for base in node.bases:
            self.visit(base)
        outer_enclosing = self.enclosing
        self.enclosing = (*outer_enclosing, (node.lineno, node.end_lineno or node.lineno))
        self._visit_body(node.body)
        self.scope, self.enclosing = outer, outer_enclosing

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer_scope, outer_body = self.scope, self.in_body
        body = (node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno)
        if not self.in_body:
            # Decorators and defaults run at import; the function's tests exercise them.
            self.scope = body
        for decorator in node.decorator_list:
            self._remove_decorator(decorator)
            self.visit(decorator)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self.in_body = True
        outer_enclosing = self.enclosing
        self.enclosing = (*outer_enclosing, (node.lineno, node.end_lineno or node.lineno))
        self._visit_body(node.body)
        self.scope, self.in_body, self.enclosing = outer_scope, outer_body, outer_enclosing

    visit_AsyncFunctionDef = visit_FunctionDef

    def _visit_body(self, body: list[ast.stmt]) -> None:
        for index, statement in enumerate(body):
            if index == 0 and _is_docstring(statement):
                continue
            if isinstance(statement, ast.If) and _is_type_checking(statement.test):
                continue
            simple = not hasattr(statement, "body")
            end = (statement.end_lineno or statement.lineno) if simple else statement.lineno
            self.statement = (statement.lineno, end)
            if self.in_body and isinstance(statement, REMOVABLE):
                self._remove_statement(statement)
            self.visit(statement)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self._visit_body(node.body)
        self._visit_body(node.orelse)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._visit_body(node.body)
        self._visit_body(node.orelse)

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self._visit_body(node.body)
        self._visit_body(node.orelse)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
        self._visit_body(node.body)

    visit_AsyncWith = visit_With

    def visit_Try(self, node: ast.Try) -> None:
        self._visit_body(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                self.visit(handler.type)
            self._visit_body(handler.body)
        self._visit_body(node.orelse)
        self._visit_body(node.finalbody)

    # -- what is never mutated --------------------------------------------------

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_arguments(self, node: ast.arguments) -> None:
        return  # annotations and defaults are handled by visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_Call(self, node: ast.Call) -> None:
        if _call_name(node.func) in self.skip:
            for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                for inner in ast.walk(argument):
                    if isinstance(inner, ast.Constant):
                        self.skipped_strings.add(id(inner))
        self.generic_visit(node)

    # -- operators ------------------------------------------------------------

    def _remove_decorator(self, decorator: ast.expr) -> None:
        end_line = decorator.end_lineno or decorator.lineno
        # The whole line goes, its indentation too: what is left of a method's
        # decorator line would indent the next one (a syntax error, so no mutant).
        self.mutants.append(
            Mutant(
                module=self.module,
                path=self.path,
                operator="remove decorator",
                lineno=decorator.lineno,
                col=0,
                end_lineno=end_line + 1,
                end_col=0,
                original="@" + self._text(decorator),
                replacement="",
                scope=self.statement if self.in_body else self.scope,
                import_time=not self.in_body,
                enclosing=self.enclosing,
            )
        )

    def _remove_statement(self, statement: ast.stmt) -> None:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            return
        if isinstance(statement, ast.Assign) and all(
            isinstance(target, ast.Name) for target in statement.targets
        ):
            return  # a local never assigned: a NameError any test that runs the line sees
        self._add("remove statement", statement, "pass")

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not _is_none(node.value):
            self._add("return None", node, "return None")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            for other in COMPARISONS.get(type(op), ()):
                ops = [*node.ops]
                ops[index] = other()
                self._replace("comparison", node, ast.Compare(node.left, ops, node.comparators))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._replace("and/or", node, ast.BoolOp(other, node.values))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        other = ARITHMETIC.get(type(node.op))
        if other is not None:
            self._replace("arithmetic", node, ast.BinOp(node.left, other(), node.right))
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        other = ARITHMETIC.get(type(node.op))
        if other is not None:
            self._replace("arithmetic", node, ast.AugAssign(node.target, other(), node.value))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not | ast.USub):
            self._add("remove unary", node, ast.unparse(node.operand))
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value.value)
        if id(node) in self.skipped_strings or all(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            return
        changed = ast.JoinedStr([ast.Constant("XX"), *node.values, ast.Constant("XX")])
        self._replace("string", node, changed)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if id(node) in self.skipped_strings or value is None or value is Ellipsis:
            return
        if isinstance(value, bool):
            self._add("boolean", node, repr(not value))
        elif isinstance(value, int | float) and not isinstance(value, complex):
            self._add("number", node, repr(value + 1))
            if value != 0:
                self._add("number", node, repr(value - 1))
        elif isinstance(value, str | bytes):
            marker: str | bytes = "XX" if isinstance(value, str) else b"XX"
            self._add("string", node, repr(marker + value + marker))  # type: ignore[operator]


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""
