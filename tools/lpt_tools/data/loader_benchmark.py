"""Images/s of a config's training pipeline in one process, per decoding
backend, on JPEGs that the benchmark writes itself."""
import copy
import os
import os.path as osp
import time
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

from lpt_mmpretrain.datasets.transforms.checked_loading import decode_image

__all__ = [
    'SIZES', 'write_jpegs', 'available_backends', 'training_pipeline',
    'benchmark_pipeline'
]

#: name -> (width, height): Places-LT's 256 x 256 and iNat 2018's typical
#: 800 x 600 (long side 800).
SIZES = {'places': (256, 256), 'inat': (800, 600)}
_LOADERS = ('LoadImageFromFile', 'CheckedLoadImageFromFile')


def write_jpegs(folder: str,
                size: Tuple[int, int],
                num: int = 16,
                quality: int = 90,
                seed: int = 0) -> List[str]:
    """Write ``num`` photo-like JPEGs (smooth structure plus fine noise,
    so they compress like photos rather than like noise) of
    ``size = (width, height)``."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    paths = []
    for i in range(num):
        coarse = rng.random((h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        img = img * 200 + rng.normal(0, 6, (h, w, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        path = osp.join(folder, f'img_{i:03d}.jpg')
        cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        paths.append(path)
    return paths


def available_backends(probe: str) -> Dict[str, str]:
    """``backend -> ''`` for the MMCV backends that decode ``probe`` here,
    ``backend -> why not`` for the others."""
    result = {}
    for backend in ('cv2', 'pillow', 'turbojpeg'):
        try:
            decode_image(probe, backend)
            result[backend] = ''
        except Exception as e:
            result[backend] = f'{type(e).__name__}: {e}'.split('\n')[0]
    return result


def training_pipeline(config: Union[str, Config]) -> List[dict]:
    """The training pipeline of a config, its loader made
    ``CheckedLoadImageFromFile`` (same decoding settings)."""
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    pipeline = [dict(t) for t in pipeline]
    if not pipeline or str(pipeline[0]['type']).split('.')[-1] not in \
            _LOADERS:
        raise ValueError(
            f'{cfg.filename}: the training pipeline does not start by loading '
            'a file (its data set keeps the images in memory); benchmark a '
            'config whose data set reads image files, e.g. '
            'configs/lpt/phase1_inat.py.')
    pipeline[0]['type'] = 'CheckedLoadImageFromFile'
    return pipeline


def benchmark_pipeline(pipeline: Sequence[dict],
                       paths: Sequence[str],
                       backend: str,
                       seconds: float = 3.0,
                       warmup: int = 4) -> Tuple[float, int]:
    """Run the pipeline over ``paths`` (cycling) for about ``seconds`` in
    this process with decoding ``backend``.

    Returns:
        tuple: images per second and the number of images processed.
    """
    cfg = [dict(t) for t in pipeline]
    cfg[0] = dict(cfg[0], imdecode_backend=backend)
    compose = Compose(cfg)
    for p in paths[:warmup]:
        compose(dict(img_path=p))
    n, start = 0, time.perf_counter()
    while True:
        compose(dict(img_path=paths[n % len(paths)]))
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= len(paths):
            return n / elapsed, n
