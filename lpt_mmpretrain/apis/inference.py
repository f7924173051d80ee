"""Classify images with a trained LPT model: top-k classes by name.

A thin layer over MMPretrain's ``ImageClassificationInferencer``: it reads
one image, a folder or a list file, and returns the ``k`` best classes of
each image as plain (JSON-ready) dicts. The checkpoint may be a full one or
a prompt-only one; it is loaded by MMEngine's ``load_checkpoint`` like any
MMPretrain checkpoint.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.config import Config

from ..checks import check_min

__all__ = [
    'IMG_EXTENSIONS', 'LPTClassifierInferencer', 'collect_images',
    'load_class_names'
]

# MMPretrain's image suffixes (mmpretrain.datasets.ImageNet.IMG_EXTENSIONS).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMG_EXTENSIONS)


def collect_images(inputs: Union[str, Sequence[str]]) -> List[str]:
    """Expand images, folders and list files into image paths.

    Args:
        inputs (str | Sequence[str]): Each one an image file, a folder
            (its images, recursively, sorted) or a ``.txt`` list with one
            image path per line (relative paths are relative to the list's
            folder; blank lines and lines starting with ``#`` are skipped).

    Returns:
        list[str]: The image paths, in the order given.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    images = []
    for item in map(str, inputs):
        if osp.isdir(item):
            found = sorted(
                osp.join(root, name) for root, _, names in os.walk(item)
                for name in names if _is_image(name))
            if not found:
                raise FileNotFoundError(
                    f'{item} is a folder without images (looked for '
                    f'{", ".join(IMG_EXTENSIONS)}, recursively).')
            images.extend(found)
        elif item.endswith('.txt'):
            if not osp.isfile(item):
                raise FileNotFoundError(f'Image list {item} does not exist.')
            base = osp.dirname(item)
            with open(item) as f:
                lines = [line.strip() for line in f]
            listed = [
                line if osp.isabs(line) else osp.join(base, line)
                for line in lines if line and not line.startswith('#')
            ]
            missing = [p for p in listed if not osp.isfile(p)]
            if missing:
                raise FileNotFoundError(
                    f'{item} lists {len(missing)} image(s) that do not '
                    f'exist, e.g. {missing[0]} (relative paths are read '
                    'from the folder of the list).')
            images.extend(listed)
        elif osp.isfile(item):
            images.append(item)
        else:
            raise FileNotFoundError(
                f'{item} is neither an image file, a folder nor a .txt list '
                'of images.')
    return images


def load_class_names(classes: Union[str, Sequence[str]]) -> List[str]:
    """Class names from a list or a text file with one name per line."""
    if isinstance(classes, str):
        if not osp.isfile(classes):
            raise FileNotFoundError(
                f'Class-name file {classes} does not exist (one name per '
                'line, in label order).')
        with open(classes) as f:
            return [line.strip() for line in f if line.strip()]
    return list(classes)


class LPTClassifierInferencer:
    """Top-k classification of image files with a trained model.

    Args:
        config (str | Config): The model's config (a file or a ``Config``),
            or a model name of ``mmpretrain.list_models('lpt*')``.
        checkpoint (str, optional): A full or prompt-only checkpoint.
            Defaults to None (the weights the config itself loads).
        device (str, optional): ``'cpu'``, ``'cuda'``, ... Defaults to None
            (the first GPU if there is one).
        classes (str | Sequence[str], optional): Class names in label order,
            or a file of them; overrides the checkpoint's ``dataset_meta``
            and the data set's names. Defaults to None.

    Example:
        >>> inferencer = LPTClassifierInferencer(
        ...     'configs/lpt/phase2_digits.py',
        ...     'work_dirs/phase2_digits/epoch_40.pth')
        >>> inferencer('digits/', topk=3)[0]['topk'][0]
        {'label': 3, 'class': '3', 'score': 0.92}
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 classes: Union[str, Sequence[str], None] = None) -> None:
        from mmpretrain.apis import ImageClassificationInferencer

        import lpt_mmpretrain  # noqa: F401  (registers the components)
        if checkpoint is not None and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'Checkpoint {checkpoint} does not exist.')
        self.inferencer = ImageClassificationInferencer(
            model=config,
            pretrained=checkpoint if checkpoint is not None else False,
            device=device,
            classes=None if classes is None else load_class_names(classes))
        num_classes = getattr(self.inferencer.model.head, 'num_classes', None)
        names = self.classes
        if names is not None and num_classes is not None and \
                len(names) != num_classes:
            raise ValueError(
                f'{len(names)} class names are given for a head with '
                f'{num_classes} classes: pass `classes` in label order, one '
                'per class.')

    @property
    def classes(self) -> Optional[List[str]]:
        """The class names, or None when neither checkpoint nor data set
        names them (then only labels are returned)."""
        classes = self.inferencer.classes
        return None if classes is None else list(classes)

    def __call__(self,
                 inputs: Union[str, Sequence[str]],
                 topk: int = 5,
                 batch_size: int = 1) -> List[Dict]:
        """Classify the images ``inputs`` names.

        Args:
            inputs (str | Sequence[str]): Images, folders or ``.txt`` lists
                (see :func:`collect_images`).
            topk (int): Classes returned per image. Defaults to 5.
            batch_size (int): Images per forward pass. Defaults to 1.

        Returns:
            list[dict]: Per image ``image`` (its path), ``pred_label``,
            ``pred_class`` (None without class names), ``pred_score`` and
            ``topk``: a list of ``{'label', 'class', 'score'}``, best first.
        """
        check_min('topk', topk, 1)
        images = collect_images(inputs)
        samples = self.inferencer(
            images, return_datasamples=True, batch_size=batch_size)
        classes = self.classes
        results = []
        for image, sample in zip(images, samples):
            scores = sample.pred_score.detach().float().cpu()
            values, labels = torch.topk(scores, min(topk, scores.numel()))
            best = [
                dict(
                    label=int(label),
                    **{'class': None if classes is None else classes[label]},
                    score=float(value))
                for value, label in zip(values.tolist(), labels.tolist())
            ]
            results.append(
                dict(
                    image=image,
                    pred_label=best[0]['label'],
                    pred_class=best[0]['class'],
                    pred_score=best[0]['score'],
                    topk=best))
        return results
