"""Crossway's tests. A regular package: pyodata installs a top-level `tests` package of its own,
which would otherwise shadow this namespace package (`from tests.integration… import`)."""
