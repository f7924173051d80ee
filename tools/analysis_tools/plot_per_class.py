"""Plot per-class accuracy against the training-set class count.

Reads the prediction dumps of ``tools/test.py --out preds.pkl`` (one dict per
test sample with ``pred_label`` and ``gt_label``) and the training class
counts, and writes PNG figures (matplotlib, Agg backend)::

    python tools/analysis_tools/plot_per_class.py \\
        --preds work_dirs/phase1/preds.pkl work_dirs/phase2/preds.pkl \\
        --labels "phase 1" "phase 2" \\
        --config configs/lpt/phase1_digits.py \\
        --out per_class_accuracy.png --counts-out class_counts.png

- ``--out``: per-class top-1 accuracy (y) against the class's number of
  training images (x, log scale), one series per prediction file; the
  many / medium / few-shot boundaries are drawn as dashed lines.
- ``--counts-out``: the training class counts, classes sorted from head to
  tail (the long-tailed profile of the training split).

The counts come from ``--config`` (the training data set of the config is
built and its ``metainfo['cls_num_list']`` read, so the data must be
present; the shot thresholds and class names come from the same config) or
are given with ``--counts``.
"""
import argparse
import os.path as osp
import pickle
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the package, also when run from a checkout without `pip install -e .`
sys.path.insert(0, osp.dirname(TOOLS))
sys.path.append(TOOLS)
from lpt_mmpretrain.evaluation import per_class_accuracy  # noqa: E402
from lpt_tools.configs import counts_from_config  # noqa: E402  (tools/)
from lpt_tools.plots import plot_accuracy_vs_count  # noqa: E402
from lpt_tools.plots import plot_class_counts

__all__ = ['load_predictions', 'main']


def _label(value) -> int:
    """A label stored as an int, a 0-d or a 1-element array / tensor."""
    array = np.asarray(value.cpu() if hasattr(value, 'cpu') else value)
    if array.size != 1:
        raise ValueError(f'Expected a single label, got shape {array.shape}.')
    return int(array.reshape(-1)[0])


def load_predictions(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read a ``tools/test.py --out`` dump.

    Args:
        path (str): The pickle file: a list with one dict per test sample
            holding ``pred_label`` and ``gt_label``.

    Returns:
        tuple[np.ndarray, np.ndarray]: Predicted and true labels, (N,) each.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path}: no such prediction file; write one with '
            '`python tools/test.py CONFIG CHECKPOINT --out preds.pkl`.')
    with open(path, 'rb') as f:
        results = pickle.load(f)
    if not isinstance(results, (list, tuple)) or not results or not all(
            isinstance(r, dict) and 'pred_label' in r and 'gt_label' in r
            for r in results):
        raise ValueError(
            f'{path} is not a prediction dump of `tools/test.py --out '
            'preds.pkl` (a non-empty list of dicts with `pred_label` and '
            '`gt_label`); a `--out-item metrics` file holds no predictions.')
    pred = np.array([_label(r['pred_label']) for r in results])
    gt = np.array([_label(r['gt_label']) for r in results])
    return pred, gt


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description='Plot per-class accuracy against training class count '
        'from `tools/test.py --out` prediction dumps.')
    parser.add_argument(
        '--preds', nargs='+', default=[], help='prediction dumps (.pkl)')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='legend entry of every prediction file (default: file names)')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--config',
        help='config whose training data set gives the class counts (and '
        'whose LongTailAccuracy gives the shot thresholds)')
    source.add_argument(
        '--counts', nargs='+', type=int, help='training class counts')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides of --config, e.g. train_dataloader.dataset.'
        'data_root=data/places365')
    parser.add_argument(
        '--thresholds',
        nargs=2,
        type=int,
        metavar=('MANY', 'FEW'),
        help='many- and few-shot thresholds (papers\' convention: many > '
        'MANY, few < FEW); default: those of --config, else none drawn')
    parser.add_argument(
        '--few-inclusive',
        action='store_true',
        help='with --thresholds: few <= FEW (the official LPT convention)')
    parser.add_argument('--title', help='title of the accuracy figure')
    parser.add_argument(
        '--out',
        help='PNG of per-class accuracy against count (needs --preds)')
    parser.add_argument(
        '--counts-out', help='PNG of the training class counts')
    args = parser.parse_args(argv)
    if not args.out and not args.counts_out:
        parser.error('nothing to do: give --out and/or --counts-out.')
    if args.out and not args.preds:
        parser.error('--out plots accuracies: give --preds.')
    if args.labels is not None and len(args.labels) != len(args.preds):
        parser.error(f'{len(args.labels)} --labels for {len(args.preds)} '
                     '--preds files: give one label per file.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Run the tool; returns the paths of the written figures."""
    args = parse_args(argv)
    classes, thresholds = None, None
    if args.config:
        counts, classes, thresholds = counts_from_config(
            args.config, args.cfg_options)
    else:
        counts = args.counts
    if min(counts) < 1:
        raise ValueError(f'Every class needs a training count >= 1 for the '
                         f'log-scale axis, got {counts}.')
    if args.thresholds:
        thresholds = (args.thresholds[0], args.thresholds[1],
                      args.few_inclusive)

    written = []
    if args.out:
        labels = args.labels or [
            osp.splitext(osp.basename(p))[0] for p in args.preds
        ]
        accuracies = []
        for path in args.preds:
            pred, gt = load_predictions(path)
            accuracies.append(per_class_accuracy(pred, gt, len(counts)))
        plot_accuracy_vs_count(accuracies, labels, counts, args.out,
                               thresholds, classes, args.title)
        written.append(args.out)
    if args.counts_out:
        plot_class_counts(counts, args.counts_out, thresholds, classes)
        written.append(args.counts_out)
    for path in written:
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()
