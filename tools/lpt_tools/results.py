"""Reading MMEngine's JSON outputs of runs and summarising seeds.

Used by ``tools/demo.py``: test metrics come from the JSON file MMEngine's
``LoggerHook`` writes after a test (``WORK_DIR/TIMESTAMP/TIMESTAMP.json``),
training progress from the scalars its ``LocalVisBackend`` writes
(``WORK_DIR/TIMESTAMP/vis_data/scalars.json``); no log text is parsed.
"""
import glob
import json
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np

__all__ = [
    'read_test_metrics', 'read_last_scalars', 'training_fraction',
    'summarise_seeds'
]


def _latest_run(work_dir: str) -> Optional[str]:
    """The newest ``TIMESTAMP`` folder MMEngine made in ``work_dir``."""
    runs = sorted(
        d for d in glob.glob(osp.join(work_dir, '*'))
        if osp.isdir(d) and osp.basename(d)[:8].isdigit())
    return runs[-1] if runs else None


def read_test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics of the last test run in ``work_dir``.

    Args:
        work_dir (str): The ``--work-dir`` of ``tools/test.py``.

    Returns:
        dict: Metric name -> value, e.g. ``{'long_tail/top1': 77.0, ...}``.
    """
    run = _latest_run(work_dir)
    path = run and osp.join(run, f'{osp.basename(run)}.json')
    if not path or not osp.isfile(path):
        raise FileNotFoundError(
            f'{work_dir} holds no MMEngine test result (TIMESTAMP/'
            'TIMESTAMP.json): did `tools/test.py --work-dir` run there, with '
            "the config's default LoggerHook?")
    with open(path) as f:
        metrics = json.load(f)
    return {
        k: float(v)
        for k, v in metrics.items() if isinstance(v, (int, float))
    }


def read_last_scalars(work_dir: str,
                      key: Optional[str] = None) -> Optional[dict]:
    """The last record (holding ``key``, if given) of the newest
    ``vis_data/scalars.json``; None when there is none."""
    run = _latest_run(work_dir)
    path = run and osp.join(run, 'vis_data', 'scalars.json')
    if not path or not osp.isfile(path):
        return None
    last = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line being written
                    break
                if key is None or key in record:
                    last = record
    return last


def training_fraction(work_dir: str, max_epochs: int) -> float:
    """How much of a running training job is done, 0..1, by epochs.

    From the ``epoch`` of the last logged training scalars: epochs before
    the current one count as done.
    """
    last = read_last_scalars(work_dir, 'epoch')
    if not last:
        return 0.
    return min(1., max(0., (int(last['epoch']) - 1) / max(1, max_epochs)))


def summarise_seeds(runs: Sequence[Dict[str, Dict[str, float]]],
                    keys: Sequence[str]) -> Dict[str, Dict[str, tuple]]:
    """Mean and spread of every model's metrics over seeds.

    Args:
        runs (Sequence[dict]): One ``{model: {metric: value}}`` per seed.
        keys (Sequence[str]): The metrics to summarise.

    Returns:
        dict: ``{model: {metric: (mean, std, min, max)}}``; ``std`` is the
        sample standard deviation (0 for one seed).
    """
    if not runs:
        raise ValueError('summarise_seeds got no run.')
    summary = {}
    for model in runs[0]:
        summary[model] = {}
        for key in keys:
            values = np.array([run[model][key] for run in runs], float)
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.
            summary[model][key] = (float(values.mean()), std,
                                   float(values.min()), float(values.max()))
    return summary
