"""CPU latency of the phase-2 model: torch eager, ``torch.compile`` and
ONNX Runtime on the ONNX export. See ``docs/benchmark.md``."""
import os.path as osp
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

import torch

from lpt_mmpretrain.apis.export import ScoresModel, export_onnx, make_session
from .lpt import build_model
from .measure import time_autorange

__all__ = ['BACKENDS', 'measure_backends', 'deploy_rows']

BACKENDS = ('eager', 'compile', 'onnxruntime')


def measure_backends(setup: dict, backends: Sequence[str],
                     batch_sizes: Sequence[int],
                     min_run_time: float) -> Dict[Tuple[str, int], dict]:
    """Time ``images -> scores`` per backend and batch size on the CPU.

    The model is the phase-2 model of ``setup`` with random weights. Every
    backend gets ``setup['threads']`` threads (torch's default if None).
    Each figure is a ``Timer.blocked_autorange`` of at least
    ``min_run_time`` seconds.

    Returns:
        dict: ``{(backend, batch): dict(median_s, iqr_s, times_s, number,
        prepare_s, first_call_s, max_abs_diff)}``; ``prepare_s`` is the
        export time (ONNX Runtime; ~0 otherwise), ``first_call_s`` the first
        call at that batch size (where ``torch.compile`` compiles),
        ``max_abs_diff`` the largest score difference to eager.
    """
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f'Unknown backends {sorted(unknown)}; choose from '
                         f'{BACKENDS}.')
    threads = setup['threads']
    if threads is not None:
        torch.set_num_threads(threads)
    model = build_model(setup['phase2_model'], setup['seed'])
    model.eval()
    eager = ScoresModel(model).eval()
    gen = torch.Generator().manual_seed(setup['seed'] + 1)
    inputs = {
        b: torch.randn(b, setup['in_channels'], *setup['img_size'],
                       generator=gen)
        for b in batch_sizes
    }
    with torch.no_grad():
        reference = {b: eager(x) for b, x in inputs.items()}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            start = time.perf_counter()
            if backend == 'eager':
                run = eager
            elif backend == 'compile':
                run = torch.compile(eager)
            else:
                onnx_file = export_onnx(
                    model,
                    osp.join(tmp, 'model.onnx'),
                    shape=setup['img_size'],
                    dynamic_batch=True)
                session = make_session(onnx_file, threads)

                def run(x, session=session):
                    (scores, ) = session.run(['scores'],
                                             {'input': x.numpy()})
                    return torch.from_numpy(scores)

            prepare = time.perf_counter() - start
            for b, x in inputs.items():
                with torch.no_grad():
                    start = time.perf_counter()
                    out = run(x)  # compiles for this shape
                    first = time.perf_counter() - start

                    def step(run=run, x=x):
                        with torch.no_grad():
                            run(x)

                    m = time_autorange(step, min_run_time, threads)
                results[(backend, b)] = dict(
                    median_s=m.median,
                    iqr_s=m.iqr,
                    times_s=[t / m.number_per_run for t in m.raw_times],
                    number=len(m.raw_times) * m.number_per_run,
                    prepare_s=prepare,
                    first_call_s=first,
                    max_abs_diff=float((out - reference[b]).abs().max()))
    return results


def deploy_rows(results: Dict[Tuple[str, int], dict]
                ) -> List[Tuple[str, str, object, str]]:
    """(key, metric, value, unit) rows of the deployment table."""
    rows = []
    for (backend, batch), r in results.items():
        key, label = f'{backend}_b{batch}', f'{backend}, batch {batch}'
        rows += [
            (f'{key}_latency_ms', f'{label}: latency, median',
             1e3 * r['median_s'], 'ms'),
            (f'{key}_iqr_ms', f'{label}: latency, IQR', 1e3 * r['iqr_s'],
             'ms'),
            (f'{key}_img_s', f'{label}: throughput', batch / r['median_s'],
             'img/s'),
            (f'{key}_prepare_s', f'{label}: set-up (ONNX export, compile '
             'wrapper)',
             r['prepare_s'], 's'),
            (f'{key}_first_call_s', f'{label}: first call (compiles)',
             r['first_call_s'], 's'),
            (f'{key}_max_abs_diff', f'{label}: max abs score difference '
             'to eager', r['max_abs_diff'], 'abs'),
        ]
    return rows
