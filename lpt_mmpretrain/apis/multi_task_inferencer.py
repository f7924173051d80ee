"""Many LPT tasks on one frozen backbone, in one forward pass per batch.

An LPT task is its prompt-only file (shared prompt, optional prompt pool and
keys, head; see :mod:`lpt_mmpretrain.checkpoints.prompt_only`): the ViT is
frozen, so every task trained on the same pretrained ViT can share it. See
``docs/deployment.md``.
"""
import inspect
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.image import imread
from mmcv.transforms import Compose
from mmengine.dataset import default_collate
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.utils.attention import MultiheadAttention
from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

from ..checkpoints import (FINGERPRINT_KEY, SOURCE_KEY, backbone_fingerprint,
                           is_prompt_checkpoint, recorded_fingerprint,
                           recorded_source)
from ..models.classifiers.lpt_classifier import LPTClassifier

__all__ = ['MultiTaskInferencer', 'masked_block']

ImageType = Union[str, np.ndarray]


def masked_block(layer: nn.Module, x: torch.Tensor,
                 key_mask: torch.Tensor) -> torch.Tensor:
    """One MMPretrain ViT block whose attention ignores masked-out keys.

    :class:`TransformerEncoderLayer` takes no attention mask; this runs its
    own submodules (``ln1``, ``attn.qkv`` / ``proj``, ``ln2``, ``ffn``) in
    the same order, with ``scaled_dot_product_attention`` and a key mask.
    Tokens whose key is masked out do not change the other tokens; their own
    outputs are meaningless.

    Args:
        layer (TransformerEncoderLayer): The block, in eval mode.
        x (torch.Tensor): Tokens (B, T, C).
        key_mask (torch.Tensor): (B, T) bool, True where a token is real.

    Returns:
        torch.Tensor: Tokens (B, T, C).
    """
    attn = layer.attn
    B, T, C = x.shape
    h = layer.ln1(x)
    # (3, B, heads, T, head_dims)
    qkv = attn.qkv(h).reshape(B, T, 3, attn.num_heads,
                              attn.head_dims).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(
        qkv[0], qkv[1], qkv[2], attn_mask=key_mask[:, None, None, :])
    out = out.transpose(1, 2).reshape(B, T, attn.embed_dims)
    out = attn.out_drop(attn.gamma1(attn.proj_drop(attn.proj(out))))
    x = x + out
    return layer.ffn(layer.ln2(x), identity=x)


@dataclass
class _Task:
    """What one task adds to the frozen backbone."""
    filename: str
    prompt: Optional[torch.Tensor]  # (L, P, C) or None
    head: nn.Module
    neck: Optional[nn.Module] = None  # PromptPoolNeck, phase 2 only
    share_blocks: Optional[int] = None
    classes: Optional[Tuple[str, ...]] = None

    @property
    def prompt_length(self) -> int:
        return 0 if self.prompt is None else self.prompt.shape[1]


def _default_share_blocks() -> int:
    return inspect.signature(LPTClassifier).parameters['share_blocks'].default


class MultiTaskInferencer:
    """Serve many LPT tasks from one frozen backbone.

    Each task is a prompt-only file written by LPT training (phase 1: shared
    prompt and head; phase 2: also the prompt pool and keys). A batch may mix
    images of any tasks; it runs in one pass over the backbone, each sample
    with its own task's shared prompt, pool, keys and head:

    1. every sample goes through the L blocks with its task's shared prompt:
       the feature of a phase-1 task, the query of a phase-2 task (whose
       tokens after its ``share_blocks`` blocks are kept);
    2. each phase-2 sample selects and averages its task's top-k group
       prompts, and the phase-2 samples go again through the blocks from
       their ``share_blocks`` with shared and group prompts.

    Tasks with different prompt lengths or ``share_blocks`` mix in one
    batch: prompts are padded to the longest and the padding is masked out
    of the attention (:func:`masked_block`); a block without padding runs as
    MMPretrain's layer itself. Each image's scores equal its task's own
    model's to float tolerance.

    Tasks can be added and removed at run time; the backbone stays loaded.

    Args:
        backbone (nn.Module | dict): The frozen backbone, an
            :class:`LPTVisionTransformer` with its pretrained weights loaded,
            or its config (built, then ``init_weights()`` loads the
            ``Pretrained`` checkpoint of its ``init_cfg``). Its own prompt is
            not used.
        tasks (dict, optional): ``{name: prompt_only_file}``.
            Defaults to None.
        data_preprocessor (dict, optional): A ``ClsDataPreprocessor`` config
            for images (not for tensors). Defaults to None: the one recorded
            in the first task's model config.
        pipeline (list[dict], optional): The test pipeline for images,
            without image loading. Defaults to None: resize the short edge to
            the backbone's ``img_size``, center crop, ``PackInputs``.
        device (str): Defaults to 'cpu'.
        check_fingerprint (bool): Refuse a task whose recorded backbone
            fingerprint differs from the backbone's, or is missing.
            Defaults to True.
    """

    def __init__(self,
                 backbone: Union[nn.Module, dict],
                 tasks: Optional[Dict[str, str]] = None,
                 data_preprocessor: Optional[dict] = None,
                 pipeline: Optional[List[dict]] = None,
                 device: str = 'cpu',
                 check_fingerprint: bool = True) -> None:
        if isinstance(backbone, dict):
            backbone = MODELS.build(backbone)
            backbone.init_weights()
        for name in ('embed', 'forward_final', 'layers', 'num_layers',
                     'embed_dims'):
            if not hasattr(backbone, name):
                raise TypeError(
                    'MultiTaskInferencer needs an LPTVisionTransformer '
                    f'backbone (with `{name}`), got '
                    f'{type(backbone).__name__}.')
        for i, layer in enumerate(backbone.layers):
            if (type(layer) is not TransformerEncoderLayer
                    or type(layer.attn) is not MultiheadAttention
                    or layer.attn.v_shortcut):
                raise TypeError(
                    f'Block {i} of the backbone is a {type(layer).__name__}; '
                    'MultiTaskInferencer masks the attention of MMPretrain '
                    'TransformerEncoderLayer blocks only.')
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device)
        self.backbone.eval()
        self.backbone.requires_grad_(False)
        self.fingerprint = backbone_fingerprint(self.backbone)
        self.check_fingerprint = check_fingerprint
        self._data_preprocessor_cfg = data_preprocessor
        self._data_preprocessor: Optional[nn.Module] = None
        self._pipeline_cfg = pipeline
        self._pipeline: Optional[Compose] = None
        self._tasks: Dict[str, _Task] = {}
        for name, filename in (tasks or {}).items():
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
        ckpt = _load_checkpoint(filename, map_location='cpu')
        if not is_prompt_checkpoint(ckpt):
            raise ValueError(
                f'{filename} is not a prompt-only checkpoint: a task is the '
                '`*_prompts.pth` file written next to the full checkpoint '
                '(PromptCheckpointHook), or save_prompt_checkpoint(model, '
                'file, meta).')
        meta, state = ckpt['meta'], dict(ckpt['state_dict'])
        self._check_fingerprint(ckpt, filename)
        model_cfg = meta.get('model')
        if not isinstance(model_cfg, dict) or 'head' not in model_cfg:
            raise ValueError(
                f'{filename} records no model config (meta["model"]) with a '
                'head: write it with PromptCheckpointHook, or pass '
                'meta=dict(model=cfg.model) to save_prompt_checkpoint.')
        bb = self.backbone
        L, C = bb.num_layers, bb.embed_dims

        # The file names its frozen backbone; the check above used meta.
        state.pop(f'backbone.{FINGERPRINT_KEY}', None)
        state.pop(f'backbone.{SOURCE_KEY}', None)
        prompt = state.pop('backbone.prompt', None)
        if prompt is not None and (prompt.dim() != 3 or prompt.shape[0] != L
                                   or prompt.shape[2] != C):
            raise ValueError(
                f'The shared prompt of {filename} has shape '
                f'{tuple(prompt.shape)}, but the backbone needs (num_layers, '
                f'P, embed_dims) = ({L}, P, {C}): the task was trained on '
                'another architecture.')

        neck, share_blocks = None, None
        model_type = model_cfg.get('type')
        if model_type not in ('LPTClassifier', 'ImageClassifier'):
            raise ValueError(
                f'{filename} is a {model_type}: MultiTaskInferencer serves '
                'LPT models (LPTClassifier, or an ImageClassifier with an '
                'LPTVisionTransformer).')
        if model_cfg.get('neck'):  # phase 2
            share_blocks = model_cfg.get('share_blocks',
                                         _default_share_blocks())
            neck = MODELS.build(model_cfg['neck'])
            neck.build_pool(C, L - share_blocks)
            neck.load_state_dict(_sub_state(state, 'neck.', filename))
        if neck is not None:
            neck.eval()
        head = MODELS.build(model_cfg['head'])
        head.load_state_dict(_sub_state(state, 'head.', filename))
        if state:
            raise ValueError(
                f'{filename} holds entries that MultiTaskInferencer does not '
                f'know how to serve: {sorted(state)[:5]}.')
        classes = meta.get('classes')
        num_classes = getattr(head, 'num_classes', None)
        if classes is not None and num_classes not in (None, len(classes)):
            raise ValueError(
                f'{filename} records {len(classes)} class names but its head '
                f'has {num_classes} classes.')
        self._tasks[name] = _Task(
            filename=filename,
            prompt=None if prompt is None else prompt.to(self.device),
            head=head.to(self.device).eval(),
            neck=None if neck is None else neck.to(self.device),
            share_blocks=share_blocks,
            classes=None if classes is None else tuple(classes))
        if self._data_preprocessor_cfg is None:
            self._data_preprocessor_cfg = model_cfg.get('data_preprocessor')

    def _check_fingerprint(self, ckpt: dict, filename: str) -> None:
        if not self.check_fingerprint:
            return
        recorded = recorded_fingerprint(ckpt)
        if recorded is None:
            raise ValueError(
                f'{filename} records no backbone fingerprint, so it cannot be '
                'checked against this backbone. Re-save it with a current '
                'PromptCheckpointHook / save_prompt_checkpoint, or pass '
                'check_fingerprint=False if you know it fits.')
        if recorded != self.fingerprint:
            raise ValueError(
                f'{filename} was trained on another backbone: it records '
                f'backbone fingerprint {recorded} (checkpoint '
                f'{recorded_source(ckpt)}), this backbone has '
                f'{self.fingerprint}. Serve it with the backbone it was '
                'trained with.')

    def _get(self, name: str) -> _Task:
        if name not in self._tasks:
            raise KeyError(f'Unknown task {name!r}; the tasks are '
                           f'{self.task_names}.')
        return self._tasks[name]

    # ------------------------------------------------------------------ #
    # the forward pass
    # ------------------------------------------------------------------ #
    def _block(self, i: int, tokens: torch.Tensor,
               prompts: List[torch.Tensor],
               masks: Optional[List[torch.Tensor]]) -> torch.Tensor:
        """Block i on tokens (B, N, C) with (B, P, C) prompts appended.

        ``masks`` holds the prompts' (B, P) bool masks, or is None when no
        prompt is padding (then MMPretrain's layer runs as it is).
        """
        B, N, _ = tokens.shape
        x = torch.cat([tokens] + prompts, dim=1) if prompts else tokens
        layer = self.backbone.layers[i]
        if masks is None:
            return layer(x)[:, :N]
        key_mask = torch.cat(
            [tokens.new_ones(B, N, dtype=torch.bool)] + masks, dim=1)
        # (B, N + P + P2, C) -> keep the first N tokens
        return masked_block(layer, x, key_mask)[:, :N]

    @torch.no_grad()
    def extract_feat(self, inputs: torch.Tensor,
                     tasks: Sequence[str]) -> torch.Tensor:
        """The (B, C) feature of each sample under its own task's model.

        Args:
            inputs (torch.Tensor): Preprocessed images (B, 3, H, W).
            tasks (Sequence[str]): The task of each image.
        """
        if len(tasks) != inputs.shape[0]:
            raise ValueError(f'Got {inputs.shape[0]} images but '
                             f'{len(tasks)} task names.')
        bb = self.backbone
        L, C = bb.num_layers, bb.embed_dims
        specs = [self._get(t) for t in tasks]
        groups = _group(tasks)
        inputs = inputs.to(self.device)
        tokens = bb.embed(inputs)  # (B, N, C)
        B = tokens.shape[0]

        # Shared prompts padded to the longest: (B, L, P, C), mask (B, P).
        P = max(s.prompt_length for s in specs)
        shared = tokens.new_zeros(B, L, P, C)
        shared_mask = torch.zeros(B, P, dtype=torch.bool, device=self.device)
        for name, idx in groups.items():
            task = self._tasks[name]
            if task.prompt is not None:
                shared[idx, :, :task.prompt_length] = task.prompt
                shared_mask[idx, :task.prompt_length] = True

        # 1. all samples, shared prompts only; keep the tokens before the
        # first block that gets group prompts.
        starts = {s.share_blocks for s in specs if s.neck is not None}
        first = min(starts) if starts else None
        padded = any(s.prompt_length < P for s in specs)
        for i in range(L):
            if i == first:
                prefix = tokens  # (B, N, C)
            tokens = self._block(i, tokens, [shared[:, i]] if P else [],
                                 [shared_mask] if padded else None)
        feats = bb.forward_final(tokens)  # (B, C): feature or query
        if not starts:
            return feats

        # 2. phase-2 samples again from their share_blocks with group
        # prompts, padded to the longest and masked before share_blocks.
        rows = torch.tensor([j for j, s in enumerate(specs) if s.neck],
                            device=self.device)
        local = {j: n for n, j in enumerate(rows.tolist())}
        P2 = max(s.neck.prompt_length for s in specs if s.neck is not None)
        group = tokens.new_zeros(len(rows), L, P2, C)
        group_mask = torch.zeros(
            len(rows), L, P2, dtype=torch.bool, device=self.device)
        for name, idx in groups.items():
            task = self._tasks[name]
            if task.neck is None:
                continue
            k, p2 = task.share_blocks, task.neck.prompt_length
            sel = [local[j] for j in idx.tolist()]
            prompts, _ = task.neck(feats[idx])  # (n, L - k, P2, C)
            group[sel, k:, :p2] = prompts
            group_mask[sel, k:, :p2] = True
        pool_specs = [s for s in specs if s.neck is not None]
        padded = any(s.prompt_length < P for s in pool_specs)
        tokens = prefix[rows]
        for i in range(first, L):
            group_padded = any(s.share_blocks > i
                               or s.neck.prompt_length < P2
                               for s in pool_specs)
            prompts, masks = [group[:, i]], [group_mask[:, i]]
            if P:
                prompts.insert(0, shared[rows, i])
                masks.insert(0, shared_mask[rows])
            tokens = self._block(i, tokens, prompts,
                                 masks if padded or group_padded else None)
        feats = feats.clone()
        feats[rows] = bb.forward_final(tokens)
        return feats

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor,
                tasks: Sequence[str]) -> List[DataSample]:
        """Scores of preprocessed images, each under its task's head.

        Args:
            inputs (torch.Tensor): Preprocessed images (B, 3, H, W).
            tasks (Sequence[str]): The task of each image.

        Returns:
            list[DataSample]: ``pred_score`` / ``pred_label`` as the task's
            own model predicts them, and the metainfo ``task``.
        """
        feats = self.extract_feat(inputs, tasks)
        results: List[Optional[DataSample]] = [None] * len(tasks)
        for name, idx in _group(tasks).items():
            samples = self._tasks[name].head.predict((feats[idx], ))
            for j, sample in zip(idx.tolist(), samples):
                sample.set_metainfo(dict(task=name))
                results[j] = sample
        return results

    def __call__(self,
                 inputs: Union[torch.Tensor, ImageType, Sequence[ImageType]],
                 tasks: Union[str, Sequence[str]],
                 batch_size: int = 32,
                 return_datasamples: bool = False) -> list:
        """Classify images, each under its own task.

        Args:
            inputs: Image paths or arrays (BGR, as ``mmcv.imread`` reads
                them), or a preprocessed (B, 3, H, W) tensor.
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
        if isinstance(inputs, (str, np.ndarray)) and not (isinstance(
                inputs, np.ndarray) and inputs.ndim == 4):
            inputs = [inputs]
        num = len(inputs)
        if isinstance(tasks, str):
            tasks = [tasks] * num
        if len(tasks) != num:
            raise ValueError(f'Got {num} images but {len(tasks)} task names.')
        for name in set(tasks):
            self._get(name)
        preds = []
        for start in range(0, num, batch_size):
            chunk = inputs[start:start + batch_size]
            if not isinstance(chunk, torch.Tensor):
                chunk = self._preprocess(chunk)
            preds += self.predict(chunk, tasks[start:start + batch_size])
        if return_datasamples:
            return preds
        return [self._to_dict(p) for p in preds]

    def _to_dict(self, sample: DataSample) -> dict:
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
        return result

    def _preprocess(self, images: Sequence[ImageType]) -> torch.Tensor:
        if self._pipeline is None:
            size = self.backbone.patch_resolution
            size = size[0] * self.backbone.patch_embed.projection.stride[0]
            cfg = self._pipeline_cfg or [
                dict(type='ResizeEdge', scale=size, edge='short'),
                dict(type='CenterCrop', crop_size=size),
                dict(type='PackInputs'),
            ]
            self._pipeline = Compose([TRANSFORMS.build(t) for t in cfg])
        if self._data_preprocessor is None:
            cfg = dict(self._data_preprocessor_cfg or {})
            cfg.setdefault('type', 'ClsDataPreprocessor')
            self._data_preprocessor = MODELS.build(cfg).to(self.device)
        data = []
        for image in images:
            img = imread(image)
            if img is None:
                raise ValueError(f'Failed to read image {image}.')
            data.append(
                self._pipeline(
                    dict(img=img, img_shape=img.shape[:2],
                         ori_shape=img.shape[:2])))
        return self._data_preprocessor(default_collate(data),
                                       False)['inputs']


def _group(tasks: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Sample indices of each task, in order of first appearance."""
    groups: Dict[str, List[int]] = {}
    for j, name in enumerate(tasks):
        groups.setdefault(name, []).append(j)
    return {name: torch.tensor(idx) for name, idx in groups.items()}


def _sub_state(state: dict, prefix: str, filename: str) -> dict:
    """Pop the entries under ``prefix`` (stripped) out of ``state``."""
    keys = [k for k in state if k.startswith(prefix)]
    if not keys:
        raise ValueError(f'{filename} has no `{prefix}*` entries: it is not '
                         'an LPT prompt-only checkpoint of this kind.')
    return {k[len(prefix):]: state.pop(k) for k in keys}
