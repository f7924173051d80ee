"""Export DigitsLT (scikit-learn's digits, long-tailed) as image files in a
folder per class, plus annotation files: a data set to try LPT's own-data
path on (docs/own_data.md).

    python tools/dataset_converters/digits_to_folders.py data/my_digits

writes data/my_digits/{train,val}/<class name>/*.png|jpg and
data/my_digits/meta/{classes,train,val}.txt.
"""
import argparse
import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lpt_tools.data.digit_folders import export_digit_folders  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='the data root to create')
    parser.add_argument('--imbalance-ratio', type=float, default=10)
    parser.add_argument('--img-size', type=int, default=32)
    parser.add_argument(
        '--val-per-class',
        type=int,
        default=30,
        help='images per class in '
        'val/ (30)')
    args = parser.parse_args()
    written = export_digit_folders(
        args.out_dir,
        imbalance_ratio=args.imbalance_ratio,
        img_size=args.img_size,
        num_test_per_class=args.val_per_class)
    print(f'{written["train"]} training and {written["val"]} validation '
          f'images written to {args.out_dir}.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
