"""Export DigitsLT as image files in MMPretrain's ``CustomDataset`` layouts
(``tools/dataset_converters/digits_to_folders.py``): a small long-tailed
data set of real files to try LPT on one's own data with."""
import os
import os.path as osp
from typing import Dict

import mmcv
import numpy as np

from lpt_mmpretrain.datasets import DigitsLT

__all__ = ['export_digit_folders', 'CLASS_NAMES']

#: Folder (class) names: with spaces, as real class names often have, and
#: sorted as the labels are (CustomDataset sorts the folders), so that both
#: layouts give the same class list.
CLASS_NAMES = tuple(f'digit {i}' for i in range(10))


def export_digit_folders(out_dir: str,
                         imbalance_ratio: float = 10,
                         img_size: int = 32,
                         num_test_per_class: int = 30) -> Dict[str, int]:
    """Write DigitsLT's train and test splits as PNG and JPEG files.

    Layout (both of MMPretrain's ``CustomDataset`` layouts at once)::

        out_dir/train/digit 0/00000.png ...      # folder per class
        out_dir/val/digit 0/00000.png ...
        out_dir/meta/classes.txt                 # one class name per line
        out_dir/meta/train.txt, meta/val.txt     # 'train/digit 0/x.png 0'

    Every other image is a JPEG (quality 95), the rest PNGs.

    Args:
        out_dir (str): The data root to create; must not hold a train/ or
            val/ folder yet.
        imbalance_ratio (float): Head / tail training count. Defaults to 10.
        img_size (int): Side of the images in pixels. Defaults to 32.
        num_test_per_class (int): Images per class in val/. Defaults to 30.

    Returns:
        dict: Images written per split, e.g. ``{'train': 340, 'val': 300}``.
    """
    for split in ('train', 'val'):
        if osp.exists(osp.join(out_dir, split)):
            raise FileExistsError(
                f'{osp.join(out_dir, split)} exists already; give a new '
                'folder (nothing was written).')
    written = {}
    os.makedirs(osp.join(out_dir, 'meta'), exist_ok=True)
    for split, source in (('train', 'train'), ('val', 'test')):
        dataset = DigitsLT(
            split=source,
            imbalance_ratio=imbalance_ratio,
            img_size=img_size,
            num_test_per_class=num_test_per_class)
        lines = []
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            label = int(info['gt_label'])
            ext = '.jpg' if i % 2 else '.png'
            rel = osp.join(split, CLASS_NAMES[label], f'{i:05d}{ext}')
            img = np.ascontiguousarray(info['img'], dtype=np.uint8)
            os.makedirs(osp.dirname(osp.join(out_dir, rel)), exist_ok=True)
            mmcv.imwrite(img, osp.join(out_dir, rel))
            lines.append(f'{rel} {label}\n')
        with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
            f.writelines(lines)
        written[split] = len(lines)
    with open(osp.join(out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(f'{name}\n' for name in CLASS_NAMES)
    return written
