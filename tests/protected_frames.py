"""byok's protected frames, found in the code, and a failure injected inside one.

A *protected frame* is a function or method of ``byok`` wrapped by Django's
``@sensitive_variables()`` (its locals are hidden from error reports) or by
``@sensitive_post_parameters()`` (the request's POST data is). :func:`protected_frames`
imports every module of ``byok`` and finds them by what the decorators leave behind;
:func:`frames_in_source` reads them in the source, so that a frame the import walk
cannot reach (a nested function) is noticed too, and adds a view that sets
``request.sensitive_post_parameters`` itself (as DRF views must).

:class:`FailingInside` makes the *n*-th call that a protected frame makes raise, using
a profile hook (``sys.setprofile``), so the failure happens inside that frame while
its locals hold whatever it was working on, without knowing what it calls.

Django's filter hides the variables of every frame *below* a protected one, so a frame
whose callers are all protected would look safe without its own decorator.
:class:`OwnProtectionOnly` is Django's filter, except that from the frame under test
down, only that frame's own decorator (or one below it) counts, not its callers':
the report shows what it would if the frame were called from unprotected code.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
import threading
import types
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.views import debug as reports
from django.views.decorators import debug

import byok

from error_reports import FAILURE, InjectedFailure

#: What each decorator leaves: the name of its wrapper's code, the qualified name of
#: the decorator that ``method_decorator`` keeps in its wrapper's closure.
WRAPPERS = {
    "sensitive_variables_wrapper": "variables",
    "sensitive_post_parameters_wrapper": "post",
}
DECORATORS = {
    "sensitive_variables.<locals>.decorator": "variables",
    "sensitive_post_parameters.<locals>.decorator": "post",
}


@dataclass(frozen=True)
class Frame:
    """A protected function: ``module:qualname``, its own code, what protects it."""

    name: str
    code: types.CodeType
    marks: frozenset[str]


def _closure_marks(function: Any) -> set[str]:
    found = set()
    for cell in getattr(function, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        for item in contents if isinstance(contents, (list, tuple)) else [contents]:
            qualname = getattr(item, "__qualname__", "")
            if qualname in DECORATORS:
                found.add(DECORATORS[qualname])
    return found


def _coroutine_marks(function: Any) -> set[str]:
    """Django ≥ 5.0 leaves a coroutine function as it is and registers it by place."""
    registry = getattr(debug, "coroutine_functions_to_sensitive_variables", {})
    if not inspect.iscoroutinefunction(function):
        return set()
    key = hash(f"{inspect.getfile(function)}:{function.__code__.co_firstlineno}")
    return {"variables"} if key in registry else set()


def marks_of(obj: Any) -> set[str]:
    """How ``obj`` is protected: along its chain of wrappers (``__wrapped__``)."""
    found: set[str] = set()
    while obj is not None:
        code = getattr(obj, "__code__", None)
        if code is not None and code.co_name in WRAPPERS:
            found.add(WRAPPERS[code.co_name])
        found |= _closure_marks(obj)
        if getattr(obj, "__wrapped__", None) is None:
            found |= _coroutine_marks(obj)
        obj = getattr(obj, "__wrapped__", None)
    return found


def _callables(module: types.ModuleType) -> list[Any]:
    found = []
    for obj in vars(module).values():
        if getattr(obj, "__module__", None) != module.__name__:
            continue  # imported from elsewhere: found in its own module
        members = vars(obj).values() if inspect.isclass(obj) else [obj]
        for member in members:
            for attribute in ("__func__", "fget", "func"):  # static/class methods, properties
                member = getattr(member, attribute, member)
            if callable(member):
                found.append(member)
    return found


def byok_modules() -> list[types.ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(byok.__path__, "byok.")]
    return [byok, *(importlib.import_module(n) for n in names if ".migrations" not in n)]


def protected_frames() -> dict[str, Frame]:
    """Every protected function of ``byok``, by ``module:qualname`` of its own code."""
    frames = {}
    for module in byok_modules():
        for obj in _callables(module):
            marks = marks_of(obj)
            if not marks:
                continue
            inner = inspect.unwrap(obj)
            name = f"{inner.__module__}:{inner.__qualname__}"
            frames[name] = Frame(name, inner.__code__, frozenset(marks))
    for name, marks in frames_in_source().items():  # set by hand: seen in the source only
        if name not in frames and marks == {"post"}:
            frames[name] = replace(frame_named(name), marks=frozenset(marks))
    return dict(sorted(frames.items()))


def frame_named(name: str) -> Frame:
    """The function ``module:qualname``, protected or not (a decorator removed by
    mistake must make its test fail, not vanish from it)."""
    module, qualname = name.split(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = vars(obj)[part] if inspect.isclass(obj) else getattr(obj, part)
        for attribute in ("__func__", "fget", "func"):
            obj = getattr(obj, attribute, obj)
    return Frame(name, inspect.unwrap(obj).__code__, frozenset(marks_of(obj)))


def _module_name(path: Path) -> str:
    parts = path.relative_to(Path(byok.__file__).parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        for call in ast.walk(decorator):
            if isinstance(call, ast.Call):
                func = call.func
                names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


def _sets_post_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function does what ``sensitive_post_parameters`` does, by hand."""
    return any(
        isinstance(target, ast.Attribute) and target.attr == "sensitive_post_parameters"
        for statement in ast.walk(node)
        if isinstance(statement, ast.Assign)
        for target in statement.targets
    )


def frames_in_source() -> dict[str, set[str]]:
    """Every function of byok's source that is protected (nested ones included):
    decorated with either decorator, or setting ``request.sensitive_post_parameters``."""
    found: dict[str, set[str]] = {}

    def visit(node: ast.AST, module: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, module, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decorators = _decorators(child)
                marks = {"variables"} if "sensitive_variables" in decorators else set()
                if "sensitive_post_parameters" in decorators or _sets_post_parameters(child):
                    marks.add("post")
                if marks:
                    found[f"{module}:{prefix}{child.name}"] = marks
                visit(child, module, f"{prefix}{child.name}.<locals>.")

    for path in sorted(Path(byok.__file__).parent.rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8")), _module_name(path), "")
    return found


class FailingInside:
    """A profile hook on the calls made by the first run of ``code``: counts them, and
    makes the ``fail_at``-th one raise :class:`InjectedFailure` (in any thread, for
    the async frames that ``async_to_sync`` runs on a thread of its own)."""

    def __init__(self, code: types.CodeType, fail_at: int | None = None) -> None:
        self.code = code
        self.fail_at = fail_at
        self.frame: types.FrameType | None = None
        self.reached = False
        self.calls = 0
        self.failed = False

    def __enter__(self) -> FailingInside:
        sys.setprofile(self.hook)
        threading.setprofile(self.hook)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        self.frame = None  # let the frame and its locals go

    def hook(self, frame: types.FrameType, event: str, arg: object) -> None:
        caller = frame.f_back if event == "call" else frame if event == "c_call" else None
        if caller is None or caller.f_code is not self.code or self.failed:
            return
        if self.frame is None:
            self.frame, self.reached = caller, True
        if caller is not self.frame:
            return  # a later run of the same function
        self.calls += 1
        if self.calls == self.fail_at:
            self.failed = True
            raise InjectedFailure(FAILURE)


def _is_wrapper(frame: types.FrameType) -> bool:
    """The frame of a ``sensitive_variables`` wrapper, as Django's filter tells it."""
    return (
        frame.f_code.co_name == "sensitive_variables_wrapper"
        and "sensitive_variables_wrapper" in frame.f_locals
    )


class OwnProtectionOnly(reports.SafeExceptionReporterFilter):
    """Django's filter, blind to the protection that the callers of ``code`` give."""

    def __init__(self, code: types.CodeType) -> None:
        self.code = code

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        if self._protected_by_others_only(tb_frame):
            return [
                (n, self.cleanse_special_types(request, v)) for n, v in tb_frame.f_locals.items()
            ]
        return super().get_traceback_frame_variables(request, tb_frame)

    def _protected_by_others_only(self, tb_frame: types.FrameType) -> bool:
        """Whether ``tb_frame`` is the frame under test or below it, with no wrapper
        from it up to the frame's own (a coroutine's own mark is Django's to read)."""
        chain = []
        frame: types.FrameType | None = tb_frame
        while frame is not None and frame.f_code is not self.code:
            chain.append(frame)
            frame = frame.f_back
        if frame is None or (frame is tb_frame and frame.f_code.co_flags & inspect.CO_COROUTINE):
            return False
        chain += [frame, *([frame.f_back] if frame.f_back is not None else [])]
        return not any(_is_wrapper(f) for f in chain)
