"""CPU latency of the phase-1 and phase-2 models: torch eager,
``torch.compile`` and ONNX Runtime on the ONNX export, side by side. See
``docs/benchmarks/index.md`` and ``docs/deployment.md``."""
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

import torch

from lpt_mmpretrain.apis.export import ScoresModel, export_onnx, make_session
from .lpt import build_model
from .measure import quartiles, time_autorange

__all__ = ['BACKENDS', 'measure_backends', 'deploy_rows']

BACKENDS = ('eager', 'compile', 'onnxruntime')


def _runner(backend: str, model, eager, setup: dict, tmp: str):
    """``images -> scores`` of one backend."""
    if backend == 'eager':
        return eager
    if backend == 'compile':
        return torch.compile(eager)
    onnx_file = export_onnx(
        model,
        osp.join(tmp, 'model.onnx'),
        shape=setup['img_size'],
        dynamic_batch=True)
    session = make_session(onnx_file, setup['threads'])

    def run(x):
        (scores, ) = session.run(['scores'], {'input': x.numpy()})
        return torch.from_numpy(scores)

    return run


def measure_backends(setup: dict,
                     backends: Sequence[str],
                     batch_sizes: Sequence[int],
                     min_run_time: float,
                     phases: Sequence[int] = (1, 2),
                     rounds: int = 3) -> Dict[Tuple[str, int, int], dict]:
    """Time ``images -> scores`` per phase, backend and batch on the CPU.

    The models are the phase-1 / phase-2 models of ``setup`` with random
    weights. Every backend gets ``setup['threads']`` threads (torch's
    default if None). For each phase and batch size, ``rounds`` rounds each
    run every backend in turn for a ``Timer.blocked_autorange`` of at least
    ``min_run_time / rounds`` seconds, so a change of the machine's load
    hits all backends alike.

    Returns:
        dict: ``{(backend, phase, batch): dict(median_s, iqr_s, times_s,
        round_medians_s, number, prepare_s, first_call_s, max_abs_diff)}``:
        median and IQR over all timed blocks (per call), each round's
        median, ``prepare_s`` the export time (ONNX Runtime; ~0
        otherwise), ``first_call_s`` the first call at that batch size
        (where ``torch.compile`` compiles), ``max_abs_diff`` the largest
        score difference to eager.
    """
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f'Unknown backends {sorted(unknown)}; choose from '
                         f'{BACKENDS}.')
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}.')
    threads = setup['threads']
    if threads is not None:
        torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(setup['seed'] + 1)
    inputs = {
        b: torch.randn(
            b, setup['in_channels'], *setup['img_size'], generator=gen)
        for b in batch_sizes
    }
    results = {}
    for phase in phases:
        model = build_model(setup[f'phase{phase}_model'], setup['seed'])
        model.eval()
        eager = ScoresModel(model).eval()
        with torch.no_grad():
            reference = {b: eager(x) for b, x in inputs.items()}
        with tempfile.TemporaryDirectory() as tmp:
            runs, prepare = {}, {}
            for backend in backends:
                start = time.perf_counter()
                runs[backend] = _runner(backend, model, eager, setup, tmp)
                prepare[backend] = time.perf_counter() - start
            for b, x in inputs.items():
                first, diff = {}, {}
                for backend, run in runs.items():
                    with torch.no_grad():
                        start = time.perf_counter()
                        out = run(x)  # compiles for this shape
                        first[backend] = time.perf_counter() - start
                    diff[backend] = float((out - reference[b]).abs().max())
                blocks = {backend: [] for backend in runs}
                medians = {backend: [] for backend in runs}
                for _ in range(rounds):
                    for backend, run in runs.items():

                        def step(run=run, x=x):
                            with torch.no_grad():
                                run(x)

                        m = time_autorange(step, min_run_time / rounds,
                                           threads)
                        blocks[backend] += [
                            t / m.number_per_run for t in m.raw_times
                        ]
                        medians[backend].append(m.median)
                for backend in runs:
                    times = blocks[backend]
                    q1, _, q3 = quartiles(times)
                    results[(backend, phase, b)] = dict(
                        median_s=statistics.median(times),
                        iqr_s=q3 - q1,
                        times_s=times,
                        round_medians_s=medians[backend],
                        number=len(times),
                        prepare_s=prepare[backend],
                        first_call_s=first[backend],
                        max_abs_diff=diff[backend])
    return results


def deploy_rows(
    results: Dict[Tuple[str, int, int], dict]
) -> List[Tuple[str, str, object, str]]:
    """(key, metric, value, unit) rows of the deployment table.

    The speed-up of a backend over eager is the median (and range) over the
    rounds of eager's round median / the backend's round median.
    """
    rows = []
    for (backend, phase, batch), r in results.items():
        key = f'{backend}_p{phase}_b{batch}'
        label = f'{backend}, phase {phase}, batch {batch}'
        rows += [
            (f'{key}_latency_ms', f'{label}: latency, median',
             1e3 * r['median_s'], 'ms'),
            (f'{key}_iqr_ms', f'{label}: latency, IQR', 1e3 * r['iqr_s'],
             'ms'),
            (f'{key}_img_s', f'{label}: throughput', batch / r['median_s'],
             'img/s'),
            (f'{key}_prepare_s', f'{label}: set-up (ONNX export, compile '
             'wrapper)', r['prepare_s'], 's'),
            (f'{key}_first_call_s', f'{label}: first call (compiles)',
             r['first_call_s'], 's'),
            (f'{key}_max_abs_diff', f'{label}: max abs score difference '
             'to eager', r['max_abs_diff'], 'abs'),
        ]
        eager = results.get(('eager', phase, batch))
        if backend != 'eager' and eager is not None:
            ratios = [
                e / t
                for e, t in zip(eager['round_medians_s'], r['round_medians_s'])
            ]
            rows += [
                (f'{key}_speedup{suffix}',
                 f'{label}: speed-up over eager, {what} of rounds', value, 'x')
                for suffix, what, value in (('', 'median',
                                             statistics.median(ratios)),
                                            ('_min', 'lowest', min(ratios)),
                                            ('_max', 'highest', max(ratios)))
            ]
    return rows
