"""The demo's steps: child processes with their own log files, and one
overall progress line with an ETA read from the children's JSON output."""
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from typing import Dict, Sequence

from .results import training_fraction

__all__ = [
    'DemoError', 'run_child', 'Progress', 'clock', 'last_checkpoint',
    'wait_all'
]

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Printed by every child on import and meaning nothing here (mmcv-lite has
# no compiled ops; LPT uses none).
CHILD_WARNINGS = 'ignore:Fail to import ``MultiScaleDeformableAttention``'


class DemoError(RuntimeError):
    """A step of the demo failed."""


def run_child(args: Sequence[str], log_file: str, threads: int = 1) -> None:
    """``python ARGS`` in the repository root, output to ``log_file``."""
    env = dict(os.environ, PYTHONWARNINGS=CHILD_WARNINGS)
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    cmd = [sys.executable, *map(str, args)]
    with open(log_file, 'w') as log:
        log.write('$ ' + ' '.join(cmd) + '\n')
        log.flush()
        code = subprocess.call(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        with open(log_file) as f:
            tail = ''.join(f.readlines()[-30:])
        raise DemoError(f'`{" ".join(cmd)}` exited with status {code}. End '
                        f'of its output:\n{tail}\nFull log: {log_file}')


class Progress:
    """One overall progress line with an ETA, from the children's JSON."""

    def __init__(self, total: float, tty: bool) -> None:
        self.total, self.tty = total, tty
        self.done = 0.
        self.running: Dict[str, tuple] = {}  # name -> (work_dir, epochs, w)
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.shown = -1

    def fraction(self) -> float:
        with self.lock:
            partial = sum(w * training_fraction(d, e) if d else 0.
                          for d, e, w in self.running.values())
            return min(1., (self.done + partial) / self.total)

    def line(self) -> str:
        frac, elapsed = self.fraction(), time.monotonic() - self.start
        eta = (f'ETA {clock(elapsed * (1 - frac) / frac)}'
               if frac > 0.02 else 'ETA --:--')
        names = ', '.join(sorted(self.running)) or 'tables'
        return (f'[{100 * frac:3.0f}%] {clock(elapsed)} elapsed, {eta}  '
                f'({names})')

    def show(self, final: bool = False) -> None:
        line = self.line()
        if self.tty:
            print('\r' + line.ljust(79), end='\n' if final else '', flush=True)
        else:  # a log file: a new line every 10%
            step = int(10 * self.fraction())
            if step != self.shown or final:
                self.shown = step
                print(line, flush=True)

    def run(self,
            name: str,
            weight: float,
            fn,
            work_dir: str = '',
            epochs: int = 1) -> None:
        with self.lock:
            self.running[name] = (work_dir, epochs, weight)
        try:
            fn()
        finally:
            with self.lock:
                del self.running[name]
                self.done += weight


def clock(seconds: float) -> str:
    return f'{int(seconds) // 60}:{int(seconds) % 60:02d}'


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint MMEngine's ``last_checkpoint`` names in ``work_dir``."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        raise DemoError(f'{work_dir} has no `last_checkpoint`: the training '
                        'run saved no checkpoint.')
    with open(record) as f:
        return f.read().strip()


def wait_all(futures) -> None:
    """Let every step finish, then raise the first failure."""
    errors = []
    for future in futures:
        try:
            future.result()
        except Exception as error:  # re-raised below
            errors.append(error)
    if errors:
        raise errors[0]
