"""Crossway's shared kernel: core types, security primitives, configuration and the CLI.

The product areas live in their own top-level packages (``gateway``, ``registry``,
``policies``, ``adapters``); this package holds what all of them build on.
"""
