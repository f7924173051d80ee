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
import os
import os.path as osp
import pickle
import sys
from typing import List, Optional, Sequence, Tuple

import matplotlib

# the package, also when run from a checkout without `pip install -e .`
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lpt_mmpretrain.evaluation import (GROUPS,  # noqa: E402
                                       counts_from_config, per_class_accuracy,
                                       shot_group_convention, shot_group_masks)

__all__ = [
    'load_predictions', 'plot_accuracy_vs_count', 'plot_class_counts', 'main'
]

# Class-by-class lines are readable up to about this many classes; above it
# every class is a dot and a moving average is drawn through them.
MAX_CLASSES_FOR_LINES = 50


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


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average that ignores NaNs."""
    valid = ~np.isnan(values)
    kernel = np.ones(window)
    sums = np.convolve(np.where(valid, values, 0.), kernel, mode='same')
    nums = np.convolve(valid.astype(float), kernel, mode='same')
    with np.errstate(invalid='ignore', divide='ignore'):
        return sums / nums


def plot_accuracy_vs_count(accuracies: Sequence[np.ndarray],
                           labels: Sequence[str],
                           counts: Sequence[int],
                           out: str,
                           thresholds: Optional[Tuple[int, int, bool]] = None,
                           classes: Optional[Sequence[str]] = None,
                           title: Optional[str] = None) -> None:
    """Per-class accuracy against training count, one series per model.

    Args:
        accuracies (Sequence[np.ndarray]): Per-class accuracies (%), one
            (num_classes,) array per model.
        labels (Sequence[str]): Legend entry of every model.
        counts (Sequence[int]): Training images of every class.
        out (str): The PNG file to write.
        thresholds (tuple, optional): ``(many_shot_thr, few_shot_thr,
            few_inclusive)``; drawn as the group boundaries. Defaults to
            None (no boundaries).
        classes (Sequence[str], optional): Class names, written next to the
            points when there are few classes. Defaults to None.
        title (str, optional): Figure title. Defaults to None.
    """
    counts = np.asarray(counts, dtype=float)
    order = np.argsort(counts, kind='stable')
    num_classes = len(counts)
    few_classes = num_classes <= MAX_CLASSES_FOR_LINES
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    markers = 'osD^vP*X'
    for i, (acc, label) in enumerate(zip(accuracies, labels)):
        acc = np.asarray(acc, dtype=float)
        mean = np.nanmean(acc)
        name = f'{label} (class mean {mean:.1f}%)'
        if few_classes:
            ax.plot(
                counts[order],
                acc[order],
                marker=markers[i % 8],
                linewidth=1.5,
                markersize=6,
                label=name)
        else:
            dots = ax.scatter(counts, acc, s=8, alpha=0.3)
            window = max(3, num_classes // 20)
            ax.plot(
                counts[order],
                _moving_average(acc[order], window),
                color=dots.get_facecolor()[0][:3],
                linewidth=2,
                label=f'{name}, moving average of {window}')
    if few_classes and classes is not None:
        # Class names along the top, at their counts.
        ax.annotate(
            'class', (0., 1.),
            xycoords='axes fraction',
            xytext=(-4, 3),
            textcoords='offset points',
            ha='right',
            va='bottom',
            fontsize=8,
            color='0.35')
        for c in range(num_classes):
            ax.annotate(
                str(classes[c]), (counts[c], 1.0),
                xycoords=('data', 'axes fraction'),
                xytext=(0, 3),
                textcoords='offset points',
                ha='center',
                va='bottom',
                fontsize=8,
                color='0.35')
    if thresholds is not None:
        many, few, few_inclusive = thresholds
        # Boundaries halfway between integer counts, on the log axis.
        few_edge = few + 0.5 if few_inclusive else few - 0.5
        for edge in (few_edge, many + 0.5):
            ax.axvline(edge, color='0.5', linestyle='--', linewidth=1)
        lo, hi = counts.min() / 1.3, counts.max() * 1.3
        ax.set_xlim(lo, hi)
        for text, left, right in (('few', lo, few_edge), ('medium', few_edge,
                                                          many + 0.5),
                                  ('many', many + 0.5, hi)):
            if left < right and left < hi and right > lo:
                centre = np.sqrt(max(left, lo) * min(right, hi))
                ax.text(
                    centre,
                    0.02,
                    text,
                    ha='center',
                    va='bottom',
                    transform=ax.get_xaxis_transform(),
                    color='0.4',
                    fontsize=9)
    ax.set_xscale('log')
    ax.set_xlabel('training images of the class (log scale)')
    ax.set_ylabel('test top-1 accuracy of the class (%)')
    ax.set_ylim(-2, 102)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(loc='lower right', fontsize=9, bbox_to_anchor=(1., 0.08))
    if title:
        ax.set_title(title, pad=16 if few_classes and classes else 6)
    fig.tight_layout()
    _save(fig, out)


def plot_class_counts(counts: Sequence[int],
                      out: str,
                      thresholds: Optional[Tuple[int, int, bool]] = None,
                      classes: Optional[Sequence[str]] = None,
                      title: Optional[str] = None) -> None:
    """Bar chart of the training class counts, sorted from head to tail.

    Args:
        counts (Sequence[int]): Training images of every class.
        out (str): The PNG file to write.
        thresholds (tuple, optional): ``(many_shot_thr, few_shot_thr,
            few_inclusive)``; bars are coloured by group. Defaults to None.
        classes (Sequence[str], optional): Class names for the x ticks
            (used up to 50 classes). Defaults to None.
        title (str, optional): Figure title. Defaults to None.
    """
    counts = np.asarray(counts)
    order = np.argsort(-counts, kind='stable')
    sorted_counts = counts[order]
    x = np.arange(len(counts))
    colors = ['tab:blue'] * len(counts)
    handles = None
    if thresholds is not None:
        masks = shot_group_masks(sorted_counts, *thresholds)
        ranges = shot_group_convention(*thresholds)
        group_colors = {
            'many': 'tab:blue',
            'medium': 'tab:orange',
            'few': 'tab:red'
        }
        colors = [
            group_colors[next(g for g in GROUPS if masks[g][i])]
            for i in range(len(sorted_counts))
        ]
        handles = [
            plt.Rectangle((0, 0),
                          1,
                          1,
                          color=group_colors[g],
                          label=f'{g} ({ranges[g]}): {int(masks[g].sum())} '
                          'classes') for g in GROUPS
        ]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    if len(counts) <= MAX_CLASSES_FOR_LINES:
        ax.bar(x, sorted_counts, color=colors)
        for xi, c in zip(x, sorted_counts):
            ax.text(xi, c, str(int(c)), ha='center', va='bottom', fontsize=8)
        if classes is not None:
            ax.set_xticks(x, [str(classes[i]) for i in order])
        ax.set_xlabel('class (sorted by training count)')
    else:
        ax.bar(x, sorted_counts, color=colors, width=1.0, linewidth=0)
        ax.set_yscale('log')
        ax.set_xlabel('class rank (sorted by training count)')
    ax.set_ylabel('training images')
    ratio = counts.max() / max(counts.min(), 1)
    ax.set_title(title or f'Training split: {len(counts)} classes, '
                 f'{int(counts.sum()):,} images, imbalance {ratio:.1f}')
    if handles:
        ax.legend(handles=handles, loc='upper right', fontsize=9)
    ax.grid(True, axis='y', alpha=0.3)
    fig.tight_layout()
    _save(fig, out)


def _save(fig, out: str) -> None:
    if not out.lower().endswith('.png'):
        raise ValueError(f'{out}: the figures are PNG files; use a .png name.')
    out_dir = osp.dirname(out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


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
