"""Run a command and report the memory of all its processes: the peak of
their summed PSS, when it came, who held it, and the wall time.

    python tools/misc/process_memory.py [--interval S] [--top N] \
        [--series FILE] -- COMMAND ...

e.g. the test suite's budget (3 GB, 10 min on 2 cores)::

    python tools/misc/process_memory.py -- .venv/bin/python -m pytest tests -q

Exits with COMMAND's exit code.
"""
import argparse
import os.path as osp
import sys

sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))
from lpt_tools.process_memory import run_sampled  # noqa: E402  (tools/)

GB = 1e9 / 1024  # KiB per GB


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        usage='%(prog)s [options] -- COMMAND ...')
    parser.add_argument(
        '--interval', type=float, default=1.0, help='seconds between samples')
    parser.add_argument(
        '--top', type=int, default=8, help='processes listed at the peak')
    parser.add_argument(
        '--series', help='write "seconds summed_PSS_KiB" per sample here')
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not cmd:
        parser.error('give the command to run after --')
    if args.interval <= 0:
        parser.error('--interval must be > 0')
    run = run_sampled(cmd, args.interval)
    if args.series:
        with open(args.series, 'w') as f:
            f.writelines(f'{t:.1f} {kib}\n' for t, kib in run.series)
    totals = sorted(kib for _, kib in run.series)
    print(f'\nprocess_memory: exit {run.returncode}, wall {run.wall_s:.1f} s, '
          f'{len(run.series)} samples')
    print(f'summed PSS: peak {run.peak_kib / GB:.2f} GB at '
          f'{run.peak_s:.0f} s, median {totals[len(totals) // 2] / GB:.2f} '
          'GB')
    if run.largest_proc:
        print(f'largest process: {run.largest_proc.pss_kib / GB:.2f} GB '
              f'({run.largest_proc.cmd[:100]})')
    print(f'at the peak ({len(run.peak_procs)} processes):')
    for p in run.peak_procs[:args.top]:
        print(f'  {p.pss_kib / GB:6.2f} GB  {p.cmd[:100]}')
    return run.returncode


if __name__ == '__main__':
    sys.exit(main())
