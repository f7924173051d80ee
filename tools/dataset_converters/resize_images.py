"""Pre-shrink a data set: every image's short side at most N px.

    python tools/dataset_converters/resize_images.py SRC DST \
        --short-side 320 --workers N

SRC is a data root (images, split files, JSON); DST gets the same tree, so
train with data_root=DST. Rerun the same command to resume a stopped run.
"""
import argparse
import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lpt_tools.data.resize import resize_dataset  # noqa: E402  (tools/)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--short-side', type=int, default=320)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        '--quality',
        type=int,
        default=90,
        help='JPEG quality of the shrunk images (90)')
    args = parser.parse_args()
    res = resize_dataset(args.src, args.dst, args.short_side, args.workers,
                         args.quality)
    print(f'{res["resized"]} images written, {res["kept"]} already in '
          f'{args.dst} (kept), {res["copied"]} other files copied.')
    for path, error in res['bad']:
        print(f'BAD {path}: {error} (copied unchanged; see '
              'tools/misc/verify_dataset.py)')
    return 1 if res['bad'] else 0


if __name__ == '__main__':
    sys.exit(main())
