"""Decode every training, validation and test image of a config in parallel;
name each bad file with the fix; exit 1 if any is bad.

    python tools/misc/verify_dataset.py CONFIG [--workers N] [--out FILE]
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

import lpt_mmpretrain  # noqa: F401  (registers the data sets)

sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))
from lpt_tools.data.verify import verify_config  # noqa: E402  (tools/)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--workers',
        type=int,
        default=4,
        help='decoding processes (default 4)')
    parser.add_argument(
        '--out',
        default='bad_images.txt',
        help='where the list of bad images is written '
        '(default bad_images.txt; only when some are bad)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. data_root')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    num_bad, report = verify_config(cfg, args.workers, args.out)
    print(report)
    return 1 if num_bad else 0


if __name__ == '__main__':
    sys.exit(main())
