"""What every benchmark measures: step times, peak memory, tensor bytes.

Times come from ``torch.utils.benchmark.Timer`` (CUDA-synchronised, with
its thread setting); parameter counts from :mod:`lpt_tools.params`. CPU
memory is only measurable in a fresh process (see :class:`PeakMemory`), so
:func:`run_isolated` runs a measurement in a forked child. See
``docs/benchmarks/index.md``.
"""
import contextlib
import logging
import multiprocessing
import os
import resource
import statistics
import sys
import traceback
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from torch.utils import benchmark

__all__ = [
    'MIB', 'time_steps', 'time_autorange', 'PeakMemory', 'run_isolated',
    'can_isolate', 'tensor_bytes', 'quartiles', 'count_log_lines'
]

MIB = 2**20


def tensor_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers (shared ones once)."""
    seen, total = set(), 0
    for t in list(module.parameters()) + list(module.buffers()):
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def _timer(step: Callable[[], object],
           num_threads: Optional[int]) -> benchmark.Timer:
    return benchmark.Timer(
        stmt='step()',
        globals=dict(step=step),
        num_threads=num_threads or torch.get_num_threads())


def time_steps(step: Callable[[], object],
               iters: int,
               warmup: int,
               num_threads: Optional[int] = None) -> List[float]:
    """Seconds of ``iters`` single steps after ``warmup`` untimed ones.

    Each step is one ``Timer.timeit(number=1)``, which runs its own two
    untimed calls first (``torch.utils.benchmark``'s warm-up).
    """
    for _ in range(warmup):
        step()
    timer = _timer(step, num_threads)
    return [timer.timeit(number=1).raw_times[0] for _ in range(iters)]


def time_autorange(step: Callable[[], object],
                   min_run_time: float,
                   num_threads: Optional[int] = None) -> benchmark.Measurement:
    """``Timer.blocked_autorange``: at least ``min_run_time`` seconds of
    steps, in blocks; the Measurement has the median and the IQR."""
    return _timer(step,
                  num_threads).blocked_autorange(min_run_time=min_run_time)


def _current_rss() -> Optional[int]:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


def _max_rss() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == 'darwin' else maxrss * 1024  # KiB


class PeakMemory:
    """Peak memory of a measurement.

    CUDA: ``torch.cuda.max_memory_allocated`` (reset at :meth:`start`), and
    ``memory_allocated`` at start as the setup level. CPU: PyTorch's CPU
    allocator keeps no statistics and ``ru_maxrss`` never goes down, so the
    CPU figures need a fresh process per measurement (``isolated``): the
    peak is its ``ru_maxrss``, the setup level its resident set size at
    :meth:`start`. Otherwise the figures are None.

    Args:
        device (torch.device): Where the measurement runs.
        isolated (bool): Whether it runs in a fresh process of its own.
    """

    def __init__(self, device: torch.device, isolated: bool) -> None:
        self.device = torch.device(device)
        self.isolated = isolated
        self.base: Optional[int] = None

    def start(self) -> None:
        """Record the setup level and reset the peak."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.isolated:
            self.base = _current_rss() or _max_rss()

    def stop(self) -> Tuple[Optional[int], Optional[int]]:
        """(peak bytes, setup bytes); None where not measurable."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device), self.base
        if self.isolated:
            return _max_rss(), self.base
        return None, None


def can_isolate(device: torch.device) -> bool:
    """Whether CPU memory can be measured (a fork per measurement)."""
    return (torch.device(device).type == 'cpu'
            and 'fork' in multiprocessing.get_all_start_methods())


def _child(conn, fn: Callable, args: tuple) -> None:
    try:
        result = fn(*args)
    except BaseException:  # report everything, the parent raises it
        conn.send(('error', traceback.format_exc()))
    else:
        conn.send(('ok', result))
    finally:
        conn.close()


def run_isolated(name: str, fn: Callable, *args):
    """Run ``fn(*args)`` in a forked child process and return its result.

    Fork before the parent runs any parallel torch op.
    """
    ctx = multiprocessing.get_context('fork')
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, fn, args))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(
            f'The child process measuring {name} died with exit code '
            f'{process.exitcode} (out of memory? lower the batch size).'
        ) from None
    process.join()
    if status == 'error':
        raise RuntimeError(f'Measuring {name} failed:\n{payload}')
    return payload


def quartiles(values: Sequence[float]) -> Tuple[float, float, float]:
    """(25th percentile, median, 75th percentile)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    # 'inclusive' stays within the data (the default extrapolates, and
    # can go below the fastest round, even below 0, for a few rounds).
    q1, median, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return q1, median, q3


class _LineCounter(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += len(record.getMessage().splitlines()) or 1


@contextlib.contextmanager
def count_log_lines() -> Iterator[_LineCounter]:
    """Count the lines MMEngine's current logger is given inside the block
    (what a log file or the console would show; ``.lines`` after it), at
    any level its handlers pass on."""
    logger = MMLogger.get_current_instance()
    counter = _LineCounter()
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
