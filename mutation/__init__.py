"""Mutation testing for byok's security core (``make mutate``; not part of CI).

Each mutant is one small change to one module (a flipped comparison, ``and`` for
``or``, another HKDF label, a decorator taken off…). It runs in a fresh pytest
process against the tests that cover the changed line, with the mutated module
first on ``PYTHONPATH``. A mutant no test notices is a survivor: a change to the
code the suite would let through. ``docs/testing.md`` explains how to read them.
"""
