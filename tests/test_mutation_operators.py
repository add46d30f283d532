"""``make mutate``'s mutants (mutation/operators.py): the changes it must be able to make.

The tool is not part of the package: its module is loaded from the checkout by path,
so ``import byok`` still finds whatever byok the suite runs against.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
SOURCE = CHECKOUT / "mutation" / "operators.py"

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="mutation/ is not in this tree")


@pytest.fixture(scope="module")
def operators():
    spec = importlib.util.spec_from_file_location("byok_mutation_operators", SOURCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


CODE = '''"""A module docstring."""
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from x import y

LABEL = b"byok key id"


@sensitive_variables()
def f(token: "str", n=3):
    """A docstring."""
    if not token.startswith("byok:1:") or token[15:16] != ":":
        raise ValueError("not a token")
    self.n += n
    return token[7:15]
'''


def mutants(operators, code=CODE, **kwargs):
    return operators.find_mutants(code, "m.py", "m.py", **kwargs)


def changes(operators, code=CODE):
    return {(m.operator, m.original, m.replacement) for m in mutants(operators, code)}


def test_the_hkdf_labels_and_the_prefix_are_mutated(operators):
    found = changes(operators)
    assert ("string", 'b"byok key id"', "b'XXbyok key idXX'") in found
    assert ("string", '"byok:1:"', "'XXbyok:1:XX'") in found


def test_operators_of_each_kind(operators):
    found = {(operator, replacement) for operator, _, replacement in changes(operators)}
    assert ("remove decorator", "") in found
    assert ("remove unary", "token.startswith('byok:1:')") in found
    assert ("and/or", "not token.startswith('byok:1:') and token[15:16] != ':'") in found
    assert ("comparison", "token[15:16] == ':'") in found
    assert ("arithmetic", "self.n -= n") in found
    assert ("number", "4") in found  # n=3, off by one
    assert ("number", "2") in found
    assert ("remove statement", "pass") in found  # the raise
    assert ("return None", "return None") in found


def test_docstrings_annotations_and_type_checking_imports_are_left_alone(operators):
    originals = {original for _, original, _ in changes(operators)}
    assert not any("docstring" in original for original in originals)
    assert '"str"' not in originals
    assert not any("from x" in original for original in originals)


def test_each_mutant_changes_one_place_and_compiles(operators):
    for mutant in mutants(operators):
        changed = mutant.apply(CODE)
        compile(changed, "m.py", "exec")
        assert changed != CODE
        head = CODE.splitlines()[: mutant.lineno - 1]
        assert changed.splitlines()[: mutant.lineno - 1] == head


def test_a_removed_decorator_takes_its_line(operators):
    [removal] = [m for m in mutants(operators) if m.operator == "remove decorator"]
    assert "@sensitive_variables()" not in removal.apply(CODE)
    assert "\ndef f(" in removal.apply(CODE)


def test_a_methods_decorators_are_removed_one_at_a_time(operators):
    code = (
        "class View:\n"
        "    @action(detail=True)\n"
        "    @paid_probes\n"
        "    @sensitive_variables()\n"
        "    def retest(self, request):\n"
        "        return request\n"
    )
    removals = [m for m in mutants(operators, code) if m.operator == "remove decorator"]
    assert [m.original for m in removals] == [
        "@action(detail=True)",
        "@paid_probes",
        "@sensitive_variables()",
    ]
    without_paid_probes = removals[1].apply(code)
    assert "    @action(detail=True)\n    @sensitive_variables()\n    def retest" in (
        without_paid_probes
    )
    assert all(m.scope == (6, 6) and m.import_time for m in removals)


def test_a_mutant_knows_the_functions_and_classes_around_it(operators):
    """A statement run only at import (here, the decorator's ``return paying``) has
    no test of its own: the runner falls back to those of what encloses it."""
    code = (
        "def paid(view):\n"
        "    def paying(request):\n"
        "        return view(request)\n"
        "    return paying\n"
        "class Setting:\n"
        "    def __init__(self, name):\n"
        "        self.name = name\n"
    )
    by_line = {
        m.lineno: m for m in mutants(operators, code) if m.replacement in ("return None", "pass")
    }
    assert by_line[4].enclosing == ((1, 4),)
    assert by_line[3].enclosing == ((1, 4), (2, 3))
    assert by_line[7].enclosing == ((5, 7), (6, 7))


def test_calls_and_lines_can_be_excluded(operators):
    code = 'schema(description="text")\nx = "kept"\ny = "skipped"  # pragma: no mutate\n'
    found = {m.original for m in mutants(operators, code, skip_strings_in=frozenset({"schema"}))}
    assert found == {'"kept"'}


def test_import_time_code_runs_the_tests_of_its_function(operators):
    by_operator = {m.operator: m for m in mutants(operators)}
    body = (12, 16)  # the lines of f's body
    assert by_operator["remove decorator"].scope == body
    assert by_operator["remove decorator"].import_time
    assert by_operator["return None"].scope == (16, 16)  # a statement: its own line
    assert not by_operator["return None"].import_time
    [label] = [m for m in mutants(operators) if m.original == 'b"byok key id"']
    assert label.scope == (1, CODE.count("\n"))  # the module
