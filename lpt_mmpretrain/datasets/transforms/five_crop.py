from typing import List, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, TestTimeAug
from mmpretrain.registry import TRANSFORMS

from ...checks import check_choice

__all__ = ['FIVE_CROP_POSITIONS', 'PositionCrop', 'FiveCrop']

FIVE_CROP_POSITIONS = ('center', 'top_left', 'top_right', 'bottom_left',
                       'bottom_right')


@TRANSFORMS.register_module()
class PositionCrop(BaseTransform):
    """Crop ``crop_size`` at the center or at one corner of the image.

    One view of :class:`FiveCrop` (torchvision's ``FiveCrop`` crops the same
    five boxes).

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape

    Args:
        crop_size (int | tuple[int, int]): ``(w, h)`` of the crop, or one
            side for a square.
        position (str): ``'center'``, ``'top_left'``, ``'top_right'``,
            ``'bottom_left'`` or ``'bottom_right'``. Defaults to 'center'.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 position: str = 'center') -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        crop_size = tuple(crop_size)
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError('PositionCrop: crop_size must be a positive int '
                             f'or a (w, h) pair, got {crop_size}.')
        check_choice(
            'position', position, FIVE_CROP_POSITIONS, prefix='PositionCrop: ')
        self.crop_size = crop_size
        self.position = position

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        crop_w, crop_h = self.crop_size
        if crop_w > w or crop_h > h:
            raise ValueError(
                f'PositionCrop: the {crop_w}x{crop_h} crop is larger than the '
                f'{w}x{h} image; resize the image to at least the crop size '
                'first (e.g. ResizeEdge in front of FiveCrop).')
        if self.position == 'center':
            x = (w - crop_w) // 2
            y = (h - crop_h) // 2
        else:
            y = 0 if self.position.startswith('top') else h - crop_h
            x = 0 if self.position.endswith('left') else w - crop_w
        bbox = np.array([x, y, x + crop_w - 1, y + crop_h - 1])
        img = mmcv.imcrop(img, bboxes=bbox)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'position={self.position!r})')


@TRANSFORMS.register_module()
class FiveCrop(TestTimeAug):
    """Five-crop test-time augmentation (the ensembling LIFT uses).

    LIFT (Shi et al., ICML 2024) resizes the short edge of a test image to
    ``crop + expand`` (224 + 24) and averages the model's predictions over
    the center crop and the four corner crops. This transform makes the five
    crops of what it receives (so put a ``ResizeEdge`` in front); like
    MMCV's ``TestTimeAug`` it returns every field as a list of the views,
    which MMPretrain's ``AverageClsScoreTTA`` (``tta_model``) averages.
    Note that ``AverageClsScoreTTA`` averages softmax scores, where LIFT
    averages logits.

    Example (``tta_pipeline`` of a 224-px config, ``tools/test.py --tta``)::

        tta_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='ResizeEdge', scale=224 + 24, edge='short'),
            dict(type='FiveCrop', crop_size=224),
        ]

    Args:
        crop_size (int | tuple[int, int]): ``(w, h)`` of every crop, or one
            side for squares.
        positions (Sequence[str]): The crops to take. Defaults to
            :data:`FIVE_CROP_POSITIONS` (center and four corners).
        transforms (list[list[dict]]): Applied to every crop as in
            ``TestTimeAug`` (one view per combination); e.g.
            ``[[dict(type='RandomFlip', prob=0.), dict(type='RandomFlip',
            prob=1.)], [dict(type='PackInputs')]]`` gives ten crops.
            Defaults to ``[[dict(type='PackInputs')]]``.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 positions: Sequence[str] = FIVE_CROP_POSITIONS,
                 transforms: List[list] = None) -> None:
        if transforms is None:
            transforms = [[dict(type='PackInputs')]]
        if not positions:
            raise ValueError('FiveCrop: positions must name at least one of '
                             f'{FIVE_CROP_POSITIONS}.')
        if not isinstance(transforms, (list, tuple)) or not all(
                isinstance(t, (list, tuple)) for t in transforms):
            raise TypeError(
                'FiveCrop: transforms is a list of lists of transforms, as '
                "in TestTimeAug, e.g. [[dict(type='PackInputs')]].")
        self.crop_size = crop_size
        self.positions = tuple(positions)
        crops = [PositionCrop(crop_size, position) for position in positions]
        super().__init__([crops] + [list(t) for t in transforms])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'positions={self.positions}, '
                f'views={len(self.subroutines)})')
