"""The process tree under a pid, read from /proc: one walker for the launcher and the sampler.

Linux lists a process's children per thread, in /proc/PID/task/TID/children; a tree is its
root and, recursively, those children; `pin_tree` moves every thread of some processes onto
some cores (affinity is per thread). Nothing here raises for a process that is gone: it has
no children, and nothing to pin. Only `os` is imported, so the launcher (which never imports
bench) and bench's memory groups and experiments share this module.
"""

from __future__ import annotations

import os

__all__ = ["children", "pin_tree", "process_tree"]


def children(pid: int) -> list[int]:
    """Direct children of a process (every thread's list), or [] when it is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return found


def process_tree(root: int) -> list[int]:
    """root and all its descendants, root first (the root is listed even when it is gone)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children(pid))
    return out


def pin_tree(pids: list[int], cpus: set[int]) -> None:
    """Move every thread of the given processes onto `cpus` (affinity is per thread)."""
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass  # the thread ended meanwhile
