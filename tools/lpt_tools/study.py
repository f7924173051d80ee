"""A grid of training runs (config overrides x seeds), scored on the val
split, and what a trained prompt pool does; used by
``tools/analysis_tools/lpt_study.py`` and ``docs/demo_study.md``.

A variant is ``NAME CONFIG [KEY=VALUE ...]``: ``tools/train.py CONFIG
--cfg-options randomness.seed=SEED KEY=VALUE ...`` in ``ROOT/NAME/seed_SEED``.
In values, ``{root}`` and ``{seed}`` are replaced (a phase-2 variant names
its phase-1 run as ``model.phase1_checkpoint={root}/phase1/seed_{seed}``).
``epochs=N`` stands for the schedule of the demo's configs stretched to
``N`` epochs (one warm-up epoch, cosine to the end). The score of a run is
the last validation record of its training (MMEngine runs it after the last
epoch), read from its JSON scalars: the test split is never touched.
"""
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .demo_steps import DemoError, run_child, wait_all
from .results import read_last_scalars

__all__ = [
    'Variant', 'parse_variant', 'expand_options', 'run_grid', 'val_score',
    'summarise_grid', 'format_grid', 'pool_usage', 'selection_purity'
]

Variant = Tuple[str, str, List[str]]  # name, config, KEY=VALUE options
SCORE_KEY = 'long_tail/top1'


def parse_variant(words: Sequence[str]) -> Variant:
    """``NAME CONFIG [KEY=VALUE ...]`` -> (name, config, options)."""
    if len(words) < 2 or '=' in words[0] or '/' in words[0]:
        raise ValueError(
            f'A variant is NAME CONFIG [KEY=VALUE ...], got {list(words)}; '
            'e.g. --variant p2_lr01 configs/lpt/phase2_digit_pairs.py '
            'optim_wrapper.optimizer.lr=0.01')
    bad = [w for w in words[2:] if '=' not in w]
    if bad:
        raise ValueError(f'Variant {words[0]}: options must be KEY=VALUE, '
                         f'got {bad}.')
    return words[0], words[1], list(words[2:])


def expand_options(options: Sequence[str], root: str, seed: int) -> List[str]:
    """Fill in ``{root}`` / ``{seed}`` and expand ``epochs=N``."""
    out = ['train_cfg.val_interval=1000']  # validate after the last epoch
    for option in options:
        key, value = option.split('=', 1)
        value = value.format(root=root, seed=seed)
        if key == 'epochs':
            n = int(value)
            if n < 2:
                raise ValueError(f'epochs={n}: the schedule needs >= 2 '
                                 '(one warm-up epoch, then cosine).')
            out += [
                f'train_cfg.max_epochs={n}',
                f'param_scheduler.1.T_max={n - 1}',
                f'param_scheduler.1.end={n}'
            ]
        else:
            out.append(f'{key}={value}')
    return out


def run_dir(root: str, name: str, seed: int) -> str:
    return osp.join(root, name, f'seed_{seed}')


def val_score(work_dir: str) -> Dict[str, float]:
    """The last validation metrics of a training run (None if none yet)."""
    record = read_last_scalars(work_dir, SCORE_KEY)
    if record is None:
        return None
    return {k: v for k, v in record.items() if k.startswith('long_tail/')}


def run_grid(variants: Sequence[Variant],
             seeds: Sequence[int],
             root: str,
             jobs: int = 2,
             threads: int = 1) -> Dict[str, Dict[int, dict]]:
    """Train every variant for every seed (variants in order, the seeds of
    one side by side); runs with a score are not run again.

    Returns:
        dict: name -> seed -> val metrics.
    """
    results: Dict[str, Dict[int, dict]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, config, options in variants:

            def one(seed, name=name, config=config, options=options):
                work_dir = run_dir(root, name, seed)
                if val_score(work_dir) is None:
                    run_child([
                        'tools/train.py', config, '--work-dir', work_dir,
                        '--cfg-options', f'randomness.seed={seed}',
                        *expand_options(options, root, seed)
                    ], osp.join(work_dir, 'train.log'), threads)
                score = val_score(work_dir)
                if score is None:
                    raise DemoError(f'{work_dir}: training wrote no val '
                                    'metrics.')
                return seed, score

            futures = [pool.submit(one, s) for s in seeds]
            wait_all(futures)
            results[name] = dict(f.result() for f in futures)
    return results


def summarise_grid(results: Dict[str, Dict[int, dict]],
                   metrics: Sequence[str],
                   ref: str = None) -> List[dict]:
    """Mean and sample std per variant and metric; with ``ref``, also the
    mean and std of the paired (same seed) difference to that variant."""
    rows = []
    for name, by_seed in results.items():
        row = dict(name=name, seeds=sorted(by_seed))
        for m in metrics:
            vals = np.array([by_seed[s][m] for s in row['seeds']])
            row[m] = (vals.mean(), vals.std(ddof=1) if len(vals) > 1 else 0.)
            if ref and ref != name and ref in results:
                common = [s for s in row['seeds'] if s in results[ref]]
                diff = np.array(
                    [by_seed[s][m] - results[ref][s][m] for s in common])
                row[f'd_{m}'] = (diff.mean(),
                                 diff.std(ddof=1) if len(diff) > 1 else 0.)
        rows.append(row)
    return rows


def format_grid(rows: List[dict],
                metrics: Sequence[str],
                ref: str = None) -> str:
    """A markdown table: mean +- std, and the paired difference to ``ref``."""
    from .tables import format_table
    names = [m.split('/')[-1] for m in metrics]
    header = ['variant', 'seeds'] + names
    if ref:
        header += [f'{n} - {ref}' for n in names if n in ('top1', 'few')]
    table = []
    for row in rows:
        cells = [row['name'], len(row['seeds'])]
        cells += [f'{row[m][0]:.2f} ± {row[m][1]:.2f}' for m in metrics]
        if ref:
            for m, n in zip(metrics, names):
                if n in ('top1', 'few'):
                    d = row.get(f'd_{m}')
                    cells.append(f'{d[0]:+.2f} ± {d[1]:.2f}' if d else '')
        table.append(cells)
    return format_table(header, table)


def selection_purity(picks: np.ndarray, labels: np.ndarray) -> float:
    """How well the top-1 pick follows a labelling of the samples: the
    normalised mutual information of the two (0 = independent, 1 = the pick
    is a function of the label and back)."""
    from sklearn.metrics import normalized_mutual_info_score
    return float(normalized_mutual_info_score(labels, picks))


def pool_usage(config: str,
               checkpoint: str,
               cfg_options: dict = None,
               split_key: str = 'val_dataloader') -> dict:
    """Run a trained phase-2 model's query and key matching on a split.

    Args:
        config (str): The phase-2 config.
        checkpoint (str): A full checkpoint of its training run.
        cfg_options (dict, optional): Overrides, as the run had them.
        split_key (str): The dataloader of the config to read. Defaults to
            'val_dataloader'.

    Returns:
        dict: ``picks`` (N, top_k) selected entries, ``labels`` (N,),
        ``key_cos`` (pool, pool) cosine of the keys, ``pool_size``.
    """
    import torch
    import torch.nn.functional as F
    from mmengine.runner import Runner, load_checkpoint

    from .configs import build_untrained_model, load_config
    cfg = load_config(config, cfg_options)
    model = build_untrained_model(cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    model.eval()
    loader_cfg = cfg[split_key].copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    picks, labels = [], []
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            query = model.extract_feat(data['inputs'], stage='query')
            picks.append(model.neck.select(query)[1])
            labels += [int(s.gt_label) for s in data['data_samples']]
        key = F.normalize(model.neck.key, dim=-1)
    return dict(
        picks=torch.cat(picks).numpy(),
        labels=np.array(labels),
        key_cos=(key @ key.t()).numpy(),
        pool_size=int(model.neck.pool_size))
