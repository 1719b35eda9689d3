"""CPU time and resident memory of processes, read from /proc (Linux only).

CPU is ``utime + stime`` of ``/proc/PID/stat`` (fields 14 and 15, in clock ticks), summed over a
process and its descendants, so a gateway with worker processes is measured as one gateway.
RSS is ``VmRSS`` of ``/proc/PID/status``. Reading these files costs microseconds and does not
disturb the processes measured.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["RssSampler", "cpu_seconds", "descendants", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (children of children included)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])  # field 4, after state
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds consumed so far by these processes (ended ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of the man page)
    return total / _TICKS


def rss_bytes(pids: list[int]) -> int:
    """Sum of ``VmRSS`` of these processes."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class RssSampler:
    """Samples the RSS of a few process groups every ``interval_s`` on a thread; keeps the peak.

    A thread, not a task: the event loop of the caller is busy moving the bytes being measured.
    """

    def __init__(self, groups: dict[str, list[int]], interval_s: float = 0.02) -> None:
        self._groups = groups
        self._interval = interval_s
        self.baseline = {name: rss_bytes(pids) for name, pids in groups.items()}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            for name, pids in self._groups.items():
                self.peak[name] = max(self.peak[name], rss_bytes(pids))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self) -> dict[str, int]:
        return {name: self.peak[name] - self.baseline[name] for name in self._groups}
