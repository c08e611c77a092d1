"""The two threads that write one file, and the byte check that re-reads it: work split by bytes, run on plain threads.

Writing and digesting release the GIL, so a second thread uses the second core; both the writer and the byte check
(migration/run.py) share these.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

WRITERS = 2  # threads writing one file: the copy is memory-bound, a second core doubles it
T = TypeVar("T")
R = TypeVar("R")


def on_threads(work: Callable[[T], R], items: list[T]) -> list[R]:
    """work(item) for every item, each on a thread of its own; their results in order, or the first exception
    raised, once every thread has ended (an interrupt, too, waits for them: their files are removed next).
    Plain threads: concurrent.futures would add its imports (logging, queue, ...) to every migrate."""
    results: list = [None] * len(items)
    errors: list[BaseException] = []

    def run(index: int, item: T) -> None:
        try:
            results[index] = work(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(items)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
    return results


def split_by_bytes(items: list[T], parts: int, length: Callable[[T], int]) -> list[list[T]]:
    """Consecutive groups of about equal byte counts."""
    total = sum(map(length, items)) or 1
    groups: list[list[T]] = [[] for _ in range(parts)]
    done = 0
    for item in items:
        groups[min(parts - 1, done * parts // total)].append(item)
        done += length(item)
    return [group for group in groups if group]
