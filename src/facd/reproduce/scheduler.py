"""A tiny dependency-aware task pool: up to ``jobs`` tasks at once, each in a thread.

Tasks usually wait on a subprocess, so threads are enough. A task whose dependency failed is
not run and counts as failed. Ready tasks start in the order given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field


@dataclass
class Task:
    key: str
    action: Callable[[], bool | None]  # returns False when there was nothing to do
    deps: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason
    seconds: dict[str, float] = field(default_factory=dict)


def run_tasks(tasks: list[Task], jobs: int, log: Callable[[str], None] = print) -> Outcome:
    """Run ``tasks`` respecting ``deps``; returns what finished and what failed (with why)."""
    keys = {t.key for t in tasks}
    pending = [t for t in tasks]
    outcome = Outcome()
    running: dict[Future, tuple[Task, float]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            for task in list(pending):
                blocked = [d for d in task.deps if d in outcome.failed or d not in keys]
                if blocked:
                    pending.remove(task)
                    outcome.failed[task.key] = f"dependency {blocked[0]} failed or missing"
                    log(f"skip  {task.key}: {outcome.failed[task.key]}")
            ready = [t for t in pending if all(d in outcome.done for d in t.deps)]
            while ready and len(running) < max(1, jobs):
                task = ready.pop(0)
                pending.remove(task)
                log(f"start {task.key}")
                running[pool.submit(task.action)] = (task, time.perf_counter())
            if not running:
                if pending:  # unreachable dependencies (a cycle): give up on them
                    for task in pending:
                        outcome.failed[task.key] = "dependency cycle"
                    pending.clear()
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                task, t0 = running.pop(fut)
                secs = time.perf_counter() - t0
                outcome.seconds[task.key] = secs
                err = fut.exception()
                if err is None:
                    outcome.done.append(task.key)
                    cached = fut.result() is False
                    log(f"done  {task.key} ({'cached' if cached else f'{secs:.0f} s'})")
                else:
                    outcome.failed[task.key] = f"{type(err).__name__}: {err}"
                    log(f"FAIL  {task.key} ({secs:.0f} s): {outcome.failed[task.key]}")
    return outcome
