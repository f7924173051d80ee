"""The per-class figures: accuracy against the training class count, and
the training class counts from head to tail (matplotlib, Agg backend)."""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from lpt_mmpretrain.evaluation import GROUPS  # noqa: E402
from lpt_mmpretrain.evaluation import shot_group_convention, shot_group_masks

__all__ = [
    'plain_log_ticks', 'plot_accuracy_vs_count', 'plot_class_counts',
    'plot_pool_selection', 'plot_grid'
]

# Class-by-class lines are readable up to about this many classes; above it
# every class is a dot and a moving average is drawn through them.
MAX_CLASSES_FOR_LINES = 50


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average that ignores NaNs."""
    valid = ~np.isnan(values)
    kernel = np.ones(window)
    sums = np.convolve(np.where(valid, values, 0.), kernel, mode='same')
    nums = np.convolve(valid.astype(float), kernel, mode='same')
    with np.errstate(invalid='ignore', divide='ignore'):
        return sums / nums


def plain_log_ticks(axis) -> None:
    """Ticks of a log axis at 1, 2, 5 x 10^k, written as plain numbers."""
    axis.set_major_locator(
        matplotlib.ticker.LogLocator(base=10, subs=(1., 2., 5.)))
    axis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f'{v:g}'))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


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
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel('training images of the class (log scale)')
    ax.set_ylabel('test top-1 accuracy of the class (%)')
    ax.set_ylim(-2, 102)
    ax.grid(True, which='both', alpha=0.3)
    # Below the axes: the lines fill the whole plot area.
    ax.legend(
        loc='upper center',
        bbox_to_anchor=(0.5, -0.14),
        fontsize=9,
        frameon=False)
    if title:
        ax.set_title(title, pad=16 if few_classes and classes else 6)
    fig.tight_layout()
    _save(fig, out)


def plot_class_counts(counts: Sequence[int],
                      out: str,
                      thresholds: Optional[Tuple[int, int, bool]] = None,
                      classes: Optional[Sequence[str]] = None,
                      title: Optional[str] = None,
                      log_scale: bool = False) -> None:
    """Bar chart of the training class counts, sorted from head to tail.

    Args:
        counts (Sequence[int]): Training images of every class.
        out (str): The PNG file to write.
        thresholds (tuple, optional): ``(many_shot_thr, few_shot_thr,
            few_inclusive)``; bars are coloured by group. Defaults to None.
        classes (Sequence[str], optional): Class names for the x ticks
            (used up to 50 classes). Defaults to None.
        title (str, optional): Figure title. Defaults to None.
        log_scale (bool): A log count axis labelled in plain numbers, and
            the groups' spans shaded, whatever the number of classes.
            Defaults to False (log only above 50 classes).
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
    if log_scale:
        ax.set_yscale('log')
        plain_log_ticks(ax.yaxis)
        if thresholds is not None:
            for g in GROUPS:
                where = np.flatnonzero(masks[g])
                if where.size:
                    ax.axvspan(
                        where[0] - 0.5,
                        where[-1] + 0.5,
                        color=group_colors[g],
                        alpha=0.12,
                        lw=0)
    ax.set_ylabel('training images')
    ratio = counts.max() / max(counts.min(), 1)
    ax.set_title(title or f'Training split: {len(counts)} classes, '
                 f'{int(counts.sum()):,} images, imbalance {ratio:.1f}')
    if handles:
        ax.legend(handles=handles, loc='upper right', fontsize=9)
    ax.grid(True, axis='y', alpha=0.3)
    fig.tight_layout()
    _save(fig, out)


def plot_pool_selection(share: np.ndarray,
                        out: str,
                        title: Optional[str] = None) -> None:
    """Which pool entry each class's images pick first.

    Args:
        share (np.ndarray): (num_classes, pool_size), row c the share of
            class c's images whose top-1 pick is each entry. Classes stay
            in label order ('00' .. '99' for DigitPairsLT: rows of equal
            tens digit are neighbours, lines every 10 rows).
        out (str): The PNG file.
        title (str, optional): The title.
    """
    num_classes, pool_size = share.shape
    fig, ax = plt.subplots(figsize=(5.5, 7), dpi=120)
    image = ax.imshow(
        share,
        aspect='auto',
        cmap='Greys',
        vmin=0,
        vmax=1,
        interpolation='nearest')
    if num_classes % 10 == 0:
        for y in range(10, num_classes, 10):
            ax.axhline(y - 0.5, color='tab:red', lw=0.5)
        ax.set_yticks(range(0, num_classes, 10))
    ax.set_xticks(range(pool_size))
    ax.set_xlabel('pool entry (top-1 pick)')
    ax.set_ylabel('class (label order)')
    fig.colorbar(image, ax=ax, label="share of the class's images")
    ax.set_title(title or 'Pool selection per class')
    fig.tight_layout()
    _save(fig, out)


def plot_grid(names: Sequence[str],
              values: Dict[str, Sequence[Tuple[float, float]]],
              out: str,
              ylabel: str,
              title: Optional[str] = None) -> None:
    """Grouped bars with error bars: one group per variant, one bar per
    metric (mean, spread); the legend sits outside the axes."""
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    width = 0.8 / max(len(values), 1)
    x = np.arange(len(names))
    for i, (metric, pairs) in enumerate(values.items()):
        mean = [m for m, _ in pairs]
        spread = [s for _, s in pairs]
        ax.bar(
            x + (i - (len(values) - 1) / 2) * width,
            mean,
            width,
            yerr=spread,
            capsize=3,
            label=metric)
    ax.set_xticks(x, names, rotation=30, ha='right')
    ax.set_ylabel(ylabel)
    ax.axhline(0, color='black', lw=0.6)
    ax.grid(True, axis='y', alpha=0.3)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize=9)
    ax.set_title(title or '')
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
