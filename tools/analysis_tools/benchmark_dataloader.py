"""Images/s per dataloader worker process of a config's training pipeline
(decode, RandomResizedCrop, flip, pack), per decoding backend, on
Places-LT-size (256 x 256) and iNat-size (800 x 600, quality 90) JPEGs that
it writes itself; optionally also on the iNat-size images pre-shrunk to a
short side of --short-side px (tools/dataset_converters/resize_images.py).

    python tools/analysis_tools/benchmark_dataloader.py \
        [--config configs/lpt/phase1_inat.py] [--seconds 3] [--repeats 3] \
        [--cfg-options key=value ...]
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import cv2

import lpt_mmpretrain  # noqa: F401  (registers the transforms)
from lpt_mmpretrain.apis import add_cfg_options, model_config

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lpt_tools.data.loader_benchmark import SIZES  # noqa: E402  (tools/)
from lpt_tools.data.loader_benchmark import (available_backends,
                                             benchmark_pipeline,
                                             training_pipeline, write_jpegs)
from lpt_tools.data.resize import resize_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/lpt/phase1_inat.py')
    add_cfg_options(parser)
    parser.add_argument(
        '--seconds', type=float, default=3.0, help='time per measurement (3)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=3,
        help='measurements per case; min, median, max '
        'are printed (3)')
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument(
        '--short-side',
        type=int,
        default=320,
        help='also measure iNat-size images pre-shrunk to '
        'this short side; 0 to skip (320)')
    args = parser.parse_args()
    cv2.setNumThreads(0)  # as in a worker (env_cfg.opencv_num_threads=0)
    pipeline = training_pipeline(model_config(args.config, args.cfg_options))
    print(f'config: {args.config}')
    print('pipeline (the loader\'s imdecode_backend varies): ' +
          ' -> '.join(str(t) for t in pipeline))
    print(f'host: {os.cpu_count()} CPUs, OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS", "unset")}; one process')
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        for name, size in SIZES.items():
            sets[name] = write_jpegs(
                osp.join(tmp, name), size, args.num_images)
        if args.short_side > 0:
            small = osp.join(tmp, f'inat_short{args.short_side}')
            resize_dataset(osp.join(tmp, 'inat'), small, args.short_side)
            sets[f'inat->short {args.short_side}'] = sorted(
                osp.join(small, n) for n in os.listdir(small))
        backends = available_backends(sets['places'][0])
        for backend, why in backends.items():
            if why:
                print(f'backend {backend}: not available ({why})')
        print(f'{"images":24s} {"KiB/img":>8s} {"backend":10s} '
              f'{"img/s min":>10s} {"median":>8s} {"max":>8s}')
        for name, paths in sets.items():
            kib = sum(osp.getsize(p) for p in paths) / len(paths) / 1024
            shape = cv2.imread(paths[0]).shape
            label = f'{name} ({shape[1]}x{shape[0]})'
            for backend, why in backends.items():
                if why:
                    continue
                rates = sorted(
                    benchmark_pipeline(pipeline, paths, backend, args.seconds)
                    [0] for _ in range(args.repeats))
                print(f'{label:24s} {kib:8.1f} {backend:10s} '
                      f'{rates[0]:10.1f} {rates[len(rates) // 2]:8.1f} '
                      f'{rates[-1]:8.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
