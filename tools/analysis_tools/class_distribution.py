"""Print the class distribution of a training split and plot its sorted
counts: classes, images, imbalance ratio, head and tail classes, the shot
groups under the config's thresholds, thresholds that give three non-empty
groups, and classes with too few images to test.

    python tools/analysis_tools/class_distribution.py CONFIG \\
        [--cfg-options ...] [--out class_counts.png]
    python tools/analysis_tools/class_distribution.py --folder DATA/train
    python tools/analysis_tools/class_distribution.py --ann-file A.txt \\
        [--classes classes.txt]

With a config, the counts are those LPT trains with (its
``train_dataloader.dataset``, any MMPretrain data set) and the evaluated
split is its ``test_dataloader``; thresholds come from its
``LongTailAccuracy`` (a folder / annotation file: ``--many-shot-thr`` /
``--few-shot-thr``, default the papers' 100 / 20).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(TOOLS))
sys.path.append(TOOLS)
from lpt_mmpretrain.datasets import training_counts  # noqa: E402
from lpt_mmpretrain.evaluation import FEW_SHOT_THR, MANY_SHOT_THR  # noqa
from lpt_tools.configs import counts_from_config  # noqa: E402  (tools/)
from lpt_tools.configs import load_config, split_label_counts
from lpt_tools.data.distribution import distribution_report  # noqa: E402
from lpt_tools.data.distribution import format_report
from lpt_tools.plots import plot_class_counts  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', help='an LPT / MMPretrain config')
    parser.add_argument(
        '--folder',
        help='a folder with one sub-folder per '
        'class (CustomDataset data_prefix)')
    parser.add_argument('--ann-file', help='a `path label` annotation file')
    parser.add_argument(
        '--classes', help='class names, one per line '
        '(with --ann-file)')
    parser.add_argument('--many-shot-thr', type=int, default=MANY_SHOT_THR)
    parser.add_argument('--few-shot-thr', type=int, default=FEW_SHOT_THR)
    parser.add_argument(
        '--min-test',
        type=int,
        default=5,
        help='classes with fewer images '
        'in the evaluated split are listed (5)')
    parser.add_argument(
        '--out', default='class_counts.png', help='the plot (PNG)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of CONFIG, as in MMPretrain\'s tools')
    args = parser.parse_args(argv)
    if sum(x is not None
           for x in (args.config, args.folder, args.ann_file)) != 1:
        parser.error('give one of CONFIG, --folder or --ann-file')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    test_counts = None
    if args.config:
        counts, classes, thresholds = counts_from_config(
            args.config, args.cfg_options)
        cfg = load_config(args.config, args.cfg_options)
        if cfg.get('test_dataloader'):
            test_counts = split_label_counts(cfg, 'test_dataloader')
    else:
        from mmpretrain.datasets import CustomDataset
        dataset = CustomDataset(
            data_prefix=args.folder or '',
            ann_file=args.ann_file or '',
            classes=args.classes,
            pipeline=[])
        counts, classes = training_counts(dataset)
        thresholds = (args.many_shot_thr, args.few_shot_thr, False)
    report = distribution_report(counts, classes, thresholds, test_counts,
                                 args.min_test)
    for line in format_report(report):
        print(line)
    plot_class_counts(counts, args.out, thresholds, classes, log_scale=True)
    print(f'plot of the sorted counts: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
