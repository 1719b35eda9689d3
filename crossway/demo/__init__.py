"""The demo federation (the top floor, beside the CLI): ``crossway demo`` and what the tests
and the benchmark start — real processes for NATS, the registry, the gateways and the backends,
and :mod:`crossway.demo.inprocess`, both pipelines in one process for unit tests."""

__all__: list[str] = []
