"""Many LPT tasks on one frozen backbone, in one forward pass per batch.

An LPT task is its prompt-only file (shared prompt, optional prompt pool and
keys, head; see :mod:`lpt_mmpretrain.checkpoints.prompt_only`): the ViT is
frozen, so every task trained on the same pretrained ViT can share it. Each
task is built and loaded as its own model on the shared backbone (the normal,
checked loading path), then its tensors join the stacked ones of
:class:`~lpt_mmpretrain.apis.task_stack.TaskStack`. See
``docs/deployment.md``.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmcv.image import imread
from mmengine.dataset import Compose, default_collate
from mmpretrain.apis import BaseInferencer
from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

from ..checkpoints import backbone_fingerprint
from .multi_task_model import MultiTaskModel
from .shared_backbone import bare_view, load_task_model, resolve_backbone
from .task_stack import TaskStack, TaskTensors, task_tensors

__all__ = ['MultiTaskInferencer']

ImageType = Union[str, np.ndarray, torch.Tensor]


@dataclass
class _Task:
    """A loaded task: its file, its tensors (views into the stack)."""
    filename: str
    tensors: TaskTensors
    classes: Optional[Tuple[str, ...]] = None


class MultiTaskInferencer(BaseInferencer):
    """Serve many LPT tasks from one frozen backbone.

    Each task is a prompt-only file written by LPT training (phase 1: shared
    prompt and head; phase 2: also the prompt pool and keys). A batch may mix
    images of any tasks; it runs in one pass over the backbone, each sample
    with its own task's shared prompt, pool, keys and head, gathered from
    tensors stacked over the tasks (:class:`MultiTaskModel`): the forward
    has no loop over the tasks. Each image's scores equal its task's own
    model's to float tolerance.

    A task file is loaded the normal way: its ``LPTClassifier`` is built
    from the model config it records, on a view of the shared backbone
    (:func:`~lpt_mmpretrain.apis.shared_backbone.load_task_model`), and the
    file goes through ``load_state_dict``, so the classifier's and the
    backbone's load hooks check it. A file trained on another backbone (its
    recorded fingerprint differs) is refused before that, and the shared
    backbone is never reloaded. Tasks can be added and removed at run time.

    As MMPretrain's ``ImageClassificationInferencer`` (a
    :class:`BaseInferencer`): :meth:`preprocess` (image loading, the test
    pipeline, batching), :meth:`forward`, :meth:`postprocess` (dicts with
    ``pred_scores``, ``pred_label``, ``pred_score``, ``pred_class``, plus
    ``task``).

    Args:
        backbone (nn.Module | dict | str): The frozen backbone: an
            :class:`LPTVisionTransformer` holding its pretrained weights, its
            config, a config file (its ``model.backbone``), an LPT model
            name (``mmpretrain.list_models('lpt*')``) or a checkpoint (a full
            LPT checkpoint, or the backbone's pretrained file; see
            :func:`resolve_backbone`). Its own prompt is not used.
        tasks (dict, optional): ``{name: prompt_only_file}``.
            Defaults to None.
        data_preprocessor (dict, optional): A ``ClsDataPreprocessor`` config
            for images (not for tensors). Defaults to None: the one recorded
            in the first task's model config.
        pipeline (list[dict], optional): The test pipeline for images,
            without image loading. Defaults to None: resize the short edge to
            the backbone's ``img_size``, center crop, ``PackInputs``.
        device (str): Defaults to 'cpu'.
    """

    def __init__(self,
                 backbone: Union[nn.Module, dict, str],
                 tasks: Optional[Dict[str, str]] = None,
                 data_preprocessor: Optional[dict] = None,
                 pipeline: Optional[List[dict]] = None,
                 device: str = 'cpu') -> None:
        tasks = dict(tasks or {})
        self.device = torch.device(device)
        backbone = resolve_backbone(backbone, next(iter(tasks.values()), None))
        self.backbone = backbone.to(self.device).eval().requires_grad_(False)
        self.fingerprint = backbone_fingerprint(self.backbone)
        self._stack = TaskStack(backbone.num_layers, backbone.embed_dims)
        self._model = MultiTaskModel(bare_view(self.backbone),
                                     self._stack).eval()
        self.config = None
        self.visualizer = None
        self._pipeline_cfg = pipeline
        self.pipeline = self._init_pipeline(None)
        self._data_preprocessor_cfg = data_preprocessor
        self._data_preprocessor: Optional[nn.Module] = None
        self._tasks: Dict[str, _Task] = {}
        self._index: Dict[str, int] = {}
        self._stale = False  # the stack lags behind the tasks
        for name, filename in tasks.items():
            self.add_task(name, filename)

    # ------------------------------------------------------------------ #
    # tasks
    # ------------------------------------------------------------------ #
    @property
    def task_names(self) -> List[str]:
        return list(self._tasks)

    def classes(self, task: str) -> Optional[Tuple[str, ...]]:
        """The class names of a task, when its file records them."""
        return self._get(task).classes

    def remove_task(self, name: str) -> None:
        self._get(name)
        del self._tasks[name]
        self._stale = True

    def add_task(self, name: str, filename: str) -> None:
        """Load a prompt-only file as task ``name``.

        Args:
            name (str): The task's name; must be new.
            filename (str): A prompt-only checkpoint of a model trained on
                this backbone.
        """
        if name in self._tasks:
            raise ValueError(f'Task {name!r} exists already: remove_task() '
                             'it first or choose another name.')
        model, meta = load_task_model(self.backbone, filename,
                                      self.fingerprint)
        tensors = task_tensors(model)
        classes = meta.get('classes') or (meta.get('dataset_meta')
                                          or {}).get('classes')
        num_classes = tensors.head_weight.shape[0]
        if classes is not None and len(classes) != num_classes:
            raise ValueError(
                f'{filename} records {len(classes)} class names but its head '
                f'has {num_classes} classes.')
        self._tasks[name] = _Task(filename, tensors,
                                  None if classes is None else tuple(classes))
        self._stale = True  # restacked once before the next forward
        if self._data_preprocessor_cfg is None:
            self._data_preprocessor_cfg = meta['model'].get(
                'data_preprocessor')

    def task_model(self, name: str) -> nn.Module:
        """Task ``name`` as its own ``LPTClassifier`` on the shared backbone,
        loaded from its file (for comparisons: its ``predict`` is the
        single-task forward pass)."""
        return load_task_model(self.backbone,
                               self._get(name).filename, self.fingerprint)[0]

    def _restack(self) -> None:
        if self._stale:
            self._stack.set_tasks([t.tensors for t in self._tasks.values()])
            self._index = {name: i for i, name in enumerate(self._tasks)}
            self._stale = False

    @property
    def stack(self) -> TaskStack:
        """The tasks' stacked tensors (task ``i`` is ``task_names[i]``)."""
        self._restack()
        return self._stack

    @property
    def model(self) -> MultiTaskModel:
        """The batched forward pass: (images, task indices) -> scores."""
        self._restack()
        return self._model

    def _get(self, name: str) -> _Task:
        if name not in self._tasks:
            raise KeyError(f'Unknown task {name!r}; the tasks are '
                           f'{self.task_names}.')
        return self._tasks[name]

    def task_index(self, tasks: Sequence[str]) -> torch.Tensor:
        """The (B,) int64 stack indices of task names (the model's input)."""
        for name in set(tasks):
            self._get(name)
        self._restack()
        return torch.tensor([self._index[t] for t in tasks],
                            dtype=torch.long,
                            device=self.device)

    # ------------------------------------------------------------------ #
    # the forward pass
    # ------------------------------------------------------------------ #
    def _check_batch(self, inputs: torch.Tensor, tasks: Sequence[str]) -> None:
        if len(tasks) != inputs.shape[0]:
            raise ValueError(f'Got {inputs.shape[0]} images but '
                             f'{len(tasks)} task names.')

    @torch.no_grad()
    def extract_feat(self, inputs: torch.Tensor,
                     tasks: Sequence[str]) -> torch.Tensor:
        """The (B, C) feature of each sample under its own task's model.

        Args:
            inputs (torch.Tensor): Preprocessed images (B, 3, H, W).
            tasks (Sequence[str]): The task of each image.
        """
        self._check_batch(inputs, tasks)
        return self.model.extract_feat(
            inputs.to(self.device), self.task_index(tasks))

    @torch.no_grad()
    def predict(self,
                inputs: torch.Tensor,
                tasks: Sequence[str],
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Scores of preprocessed images, each under its task's head.

        Args:
            inputs (torch.Tensor): Preprocessed images (B, 3, H, W).
            tasks (Sequence[str]): The task of each image.
            data_samples (list[DataSample], optional): Filled in.

        Returns:
            list[DataSample]: ``pred_score`` / ``pred_label`` as the task's
            own model predicts them, and the metainfo ``task``.
        """
        self._check_batch(inputs, tasks)
        task_idx = self.task_index(tasks)
        scores = self.model(inputs.to(self.device), task_idx)  # (B, M)
        num_classes = self.stack.num_classes[task_idx].tolist()
        results = []
        for j, name in enumerate(tasks):
            sample = DataSample() if data_samples is None else data_samples[j]
            score = scores[j, :num_classes[j]]
            sample.set_pred_score(score).set_pred_label(score.argmax(0, True))
            sample.set_metainfo(dict(task=name))
            results.append(sample)
        return results

    # ------------------------------------------------------------------ #
    # BaseInferencer: preprocess / forward / postprocess
    # ------------------------------------------------------------------ #
    def __call__(self,
                 inputs: Union[ImageType, Sequence[ImageType]],
                 tasks: Union[str, Sequence[str]],
                 batch_size: int = 32,
                 return_datasamples: bool = False) -> list:
        """Classify images, each under its own task.

        Args:
            inputs: Image paths or arrays (BGR, as ``mmcv.imread`` reads
                them), a folder, or a preprocessed (B, 3, H, W) tensor.
            tasks (str | Sequence[str]): One task for all images, or one per
                image.
            batch_size (int): Images per forward pass. Defaults to 32.
            return_datasamples (bool): Return the DataSamples instead of
                dicts. Defaults to False.

        Returns:
            list: Per image, as MMPretrain's ``ImageClassificationInferencer``
            returns: ``pred_scores``, ``pred_label``, ``pred_score`` and
            ``pred_class`` (when the task records class names), plus
            ``task``.
        """
        return super().__call__(
            inputs,
            return_datasamples=return_datasamples,
            batch_size=batch_size,
            tasks=tasks)

    preprocess_kwargs: set = {'tasks'}

    def _init_pipeline(self, cfg) -> Callable:
        size = self.backbone.patch_resolution
        size = size[0] * self.backbone.patch_embed.projection.stride[0]
        pipeline = self._pipeline_cfg or [
            dict(type='ResizeEdge', scale=size, edge='short'),
            dict(type='CenterCrop', crop_size=size),
            dict(type='PackInputs'),
        ]
        return Compose([TRANSFORMS.build(t) for t in pipeline])

    def _inputs_to_list(self, inputs) -> list:
        if isinstance(inputs, torch.Tensor):
            return list(inputs) if inputs.dim() == 4 else [inputs]
        if isinstance(inputs, np.ndarray):
            return list(inputs) if inputs.ndim == 4 else [inputs]
        return super()._inputs_to_list(inputs)

    def preprocess(self,
                   inputs: List[ImageType],
                   batch_size: int = 32,
                   tasks: Union[str, Sequence[str]] = ()):
        """Batches of ``dict(inputs, data_samples)``; each data sample
        carries its ``task``. Tensors are taken as preprocessed images."""
        names = [tasks] * len(inputs) if isinstance(tasks,
                                                    str) else list(tasks)
        if len(names) != len(inputs):
            raise ValueError(
                f'Got {len(inputs)} images but {len(names)} task names.')
        for name in set(names):
            self._get(name)

        def load(item):
            input_, name = item
            if isinstance(input_, torch.Tensor):
                data = dict(
                    inputs=input_,
                    data_samples=DataSample(),
                    preprocessed=True)
            else:
                img = imread(input_)
                if img is None:
                    raise ValueError(f'Failed to read image {input_}.')
                data = self.pipeline(
                    dict(
                        img=img,
                        img_shape=img.shape[:2],
                        ori_shape=img.shape[:2]))
            data['data_samples'].set_metainfo(dict(task=name))
            return data

        chunks = self._get_chunk_data(
            map(load, zip(inputs, names)), batch_size)
        yield from map(default_collate, chunks)

    @torch.no_grad()
    def forward(self, data: dict, **kwargs) -> List[DataSample]:
        """One batch of :meth:`preprocess` -> DataSamples."""
        if 'preprocessed' not in data:
            data = self.data_preprocessor(data, False)
        samples = data['data_samples']
        return self.predict(data['inputs'], [s.task for s in samples], samples)

    @property
    def data_preprocessor(self) -> nn.Module:
        if self._data_preprocessor is None:
            cfg = dict(self._data_preprocessor_cfg or {})
            cfg.setdefault('type', 'ClsDataPreprocessor')
            self._data_preprocessor = MODELS.build(cfg).to(self.device)
        return self._data_preprocessor

    def postprocess(self,
                    preds: List[DataSample],
                    visualization=None,
                    return_datasamples: bool = False) -> list:
        if return_datasamples:
            return preds
        results = []
        for sample in preds:
            scores = sample.pred_score
            label = int(scores.argmax())
            result = dict(
                task=sample.task,
                pred_scores=scores.cpu().numpy(),
                pred_label=label,
                pred_score=float(scores[label]))
            classes = self._tasks[sample.task].classes
            if classes is not None:
                result['pred_class'] = classes[label]
            results.append(result)
        return results
