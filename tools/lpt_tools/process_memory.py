"""Memory of a process tree, the way the suite's budget counts it: the sum
of PSS (proportional set size: each shared page divided among the processes
that map it) over a process and all its descendants, sampled while it runs.
RSS summed would count torch's shared libraries once per process; the max
RSS that ``/usr/bin/time`` prints is that of the largest process only.
Linux only (``/proc/PID/smaps_rollup``)."""
import os
import subprocess
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

__all__ = ['Proc', 'descendants', 'tree_pss', 'TreeRun', 'run_sampled']


class Proc(NamedTuple):
    pid: int
    pss_kib: int
    cmd: str


def _children_map() -> Dict[int, List[int]]:
    kids: Dict[int, List[int]] = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                # "pid (comm) state ppid ...": comm may hold spaces.
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        kids.setdefault(ppid, []).append(int(name))
    return kids


def descendants(root: int) -> List[int]:
    """``root`` and every process below it (children, their children...)."""
    kids, todo, found = _children_map(), [root], []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def tree_pss(root: int) -> List[Proc]:
    """PSS and command line of ``root`` and its descendants, largest first
    (processes that exit while being read are left out)."""
    procs = []
    for pid in descendants(root):
        try:
            with open(f'/proc/{pid}/smaps_rollup') as f:
                pss = next(
                    int(line.split()[1]) for line in f
                    if line.startswith('Pss:'))
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except (OSError, StopIteration):
            continue
        procs.append(Proc(pid, pss, ' '.join(cmd.split())))
    return sorted(procs, key=lambda p: -p.pss_kib)


class TreeRun(NamedTuple):
    returncode: int
    wall_s: float
    # (seconds since the start, summed PSS in KiB), one per sample
    series: List[Tuple[float, int]]
    peak_s: float
    peak_kib: int
    peak_procs: List[Proc]  # the processes at the peak, largest first
    largest_proc: Optional[Proc]  # the largest single process seen


def run_sampled(cmd: Sequence[str],
                interval_s: float = 1.0,
                **popen_kwargs) -> TreeRun:
    """Run ``cmd`` and sample its tree's summed PSS every ``interval_s``."""
    if interval_s <= 0:
        raise ValueError(f'interval_s must be > 0, got {interval_s}.')
    start = time.monotonic()
    proc = subprocess.Popen(list(cmd), **popen_kwargs)
    series, peak, largest = [], (0.0, 0, []), None
    while True:
        done = proc.poll() is not None
        procs = tree_pss(proc.pid) if not done else []
        now = time.monotonic() - start
        total = sum(p.pss_kib for p in procs)
        series.append((now, total))
        if total > peak[1]:
            peak = (now, total, procs)
        if procs and (largest is None or procs[0].pss_kib > largest.pss_kib):
            largest = procs[0]
        if done:
            break
        time.sleep(interval_s)
    return TreeRun(proc.returncode,
                   time.monotonic() - start, series, *peak, largest)
