"""``make bench``: Crossway measured against the bare network path, side by side, in one run.

Modules: :mod:`bench.procstat` (CPU and RSS of processes, from /proc), :mod:`bench.loadgen`
(the load generator, run as its own processes), :mod:`bench.proxy` (a byte-forwarding gRPC
proxy, the "no security work" baseline), :mod:`bench.measure` (one measured run),
:mod:`bench.scenarios` (what is started), :mod:`bench.report` (the table and
``bench/results/latest.json``), :mod:`bench.run` (the entry point, ``python -m bench``).

Nothing is imported here: the generator and proxy modules run as ``python -m bench.<module>``
child processes and must not drag the orchestrator's imports in with them.
"""

__all__: list[str] = []
