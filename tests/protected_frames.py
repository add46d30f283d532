"""byok's protected frames, found in the code, and a failure injected inside one.

A *protected frame* is a function or method of ``byok`` wrapped by Django's
``@sensitive_variables()`` (its locals are hidden from error reports) or by
``@sensitive_post_parameters()`` (the request's POST data is). :func:`protected_frames`
imports every module of ``byok`` and finds them by what the decorators leave behind;
:func:`decorated_in_source` counts the decorators in the source, so that a frame the
import walk cannot reach (a nested function) is noticed too.

:class:`FailingInside` makes the *n*-th call that a protected frame makes raise, using
a profile hook (``sys.setprofile``), so the failure happens inside that frame while
its locals hold whatever it was working on, without knowing what it calls.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.views.decorators import debug
from error_reports import FAILURE, InjectedFailure

import byok

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
    return dict(sorted(frames.items()))


def decorated_in_source() -> int:
    """How many functions of byok's source carry either decorator, even nested ones."""
    count = 0
    for path in Path(byok.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = {
                    n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")
                    for d in node.decorator_list
                    for n in ast.walk(d)
                    if isinstance(n, ast.Call)
                }
                count += bool(names & {"sensitive_variables", "sensitive_post_parameters"})
    return count


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
