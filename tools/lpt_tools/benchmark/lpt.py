"""The LPT benchmark: parameters, checkpoint sizes, training and inference
speed and memory, phase 1 and phase 2 (shared-prefix and naive); the table
and the expected speed-ups are in :mod:`.lpt_rows`.

The measured quantities are described in ``docs/benchmarks/index.md``.
"""
import copy
import json
import os.path as osp
import tempfile
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from lpt_mmpretrain.checkpoints import (frozen_state_dict,
                                        save_prompt_checkpoint)
from lpt_mmpretrain.datasets.class_counts import exponential_profile
from lpt_mmpretrain.structures import STREAM_CB, STREAM_IB, STREAM_KEY
from ..params import count_params
from .measure import PeakMemory, time_steps

__all__ = [
    'RUNS', 'PHASE2_ONLY_KEYS', 'AMP_DTYPES', 'phase2_model_cfg',
    'phase1_model_cfg', 'synthetic_class_counts', 'build_model',
    'synthetic_batch', 'measure', 'static_figures', 'save_random_backbone'
]

# Synthetic long-tailed class counts for A-GCL: CIFAR-100-LT's profile
# (largest class 500, imbalance ratio 100). Speed does not depend on them.
SYNTHETIC_MAX_COUNT = 500
SYNTHETIC_IMBALANCE = 100
# The spec's optimizer; the values do not change the step time.
SGD_CFG = dict(lr=0.01, momentum=0.9, weight_decay=0.01)
AMP_DTYPES = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}

# (key, phase, mode, shared_prefix) of every measured run, in table order.
RUNS = (
    ('phase1_train', 1, 'train', None),
    ('phase2_train_shared', 2, 'train', True),
    ('phase2_train_naive', 2, 'train', False),
    ('phase1_infer', 1, 'infer', None),
    ('phase2_infer_shared', 2, 'infer', True),
    ('phase2_infer_naive', 2, 'infer', False),
)
# Keys of the phase-2 model config that a phase-1 LPTClassifier (no neck)
# does not take.
PHASE2_ONLY_KEYS = ('neck', 'share_blocks', 'match_loss_weight',
                    'phase1_checkpoint', 'allow_no_phase1', 'shared_prefix')


# ---------------------------------------------------------------------- #
# configs and models
# ---------------------------------------------------------------------- #
def phase2_model_cfg(cfg: Config, path: str) -> dict:
    """The phase-2 model config, buildable without a phase-1 checkpoint."""
    model_cfg = cfg.model.to_dict()
    if model_cfg.get('type') != 'LPTClassifier' or not model_cfg.get('neck'):
        raise ValueError(
            f'{path} builds a {model_cfg.get("type")} without a prompt pool, '
            'not a phase-2 LPTClassifier: pass a phase-2 config '
            '(configs/lpt/phase2_*.py) as CONFIG and a phase-1 config as '
            '--phase1-config.')
    model_cfg.update(allow_no_phase1=True, phase1_checkpoint=None)
    return model_cfg


def phase1_model_cfg(phase2_cfg: dict,
                     phase1_config: Optional[str] = None) -> dict:
    """The phase-1 model config: from ``phase1_config`` or derived."""
    if phase1_config is not None:
        model_cfg = Config.fromfile(phase1_config).model.to_dict()
        if model_cfg.get('neck'):
            raise ValueError(f'--phase1-config {phase1_config} is a phase-2 '
                             '(prompt pool) config; pass a phase-1 config '
                             '(configs/lpt/phase1_*.py) or leave it out.')
        return model_cfg
    model_cfg = copy.deepcopy(phase2_cfg)
    for key in PHASE2_ONLY_KEYS:
        model_cfg.pop(key, None)
    model_cfg['type'] = 'LPTClassifier'  # phase 1: no neck
    return model_cfg


def synthetic_class_counts(num_classes: int) -> List[int]:
    """An exponential long-tailed profile of training class counts."""
    return exponential_profile(SYNTHETIC_MAX_COUNT, num_classes,
                               SYNTHETIC_IMBALANCE)


def build_model(model_cfg: dict,
                seed: int,
                shared_prefix: Optional[bool] = None) -> nn.Module:
    """Build a model with random weights and synthetic class counts.

    ``init_weights`` is not called: nothing is loaded.
    """
    model_cfg = copy.deepcopy(model_cfg)
    if shared_prefix is not None:
        model_cfg['shared_prefix'] = shared_prefix
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    if callable(getattr(model.head, 'set_class_counts', None)):
        model.head.set_class_counts(
            synthetic_class_counts(model.head.num_classes))
    return model


def save_random_backbone(model_cfg: dict, filename: str, seed: int) -> dict:
    """Save a random backbone of ``model_cfg`` as its pretrained checkpoint.

    Prompt-only files record the backbone checkpoint they were trained on;
    this makes one. Returns ``model_cfg`` with the backbone's ``init_cfg``
    pointing at ``filename``.
    """
    model_cfg = copy.deepcopy(model_cfg)
    backbone_cfg = dict(model_cfg['backbone'], init_cfg=None)
    torch.manual_seed(seed)
    backbone = MODELS.build(backbone_cfg)
    state = frozen_state_dict(backbone)
    torch.save(dict(state_dict=state), filename)
    model_cfg['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=filename)
    return model_cfg


def synthetic_batch(num_images: int, img_size: Tuple[int, int],
                    in_channels: int, num_classes: int, device: torch.device,
                    seed: int) -> Tuple[torch.Tensor, List[DataSample]]:
    """Random images and labels; the first half class-balanced."""
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(num_images, in_channels, *img_size, generator=gen)
    labels = torch.randint(num_classes, (num_images, ), generator=gen)
    samples = []
    for i, label in enumerate(labels):
        sample = DataSample().set_gt_label(label)
        sample.set_metainfo(
            {STREAM_KEY: STREAM_CB if i < num_images // 2 else STREAM_IB})
        samples.append(sample.to(device))
    return inputs.to(device), samples


# ---------------------------------------------------------------------- #
# measurements
# ---------------------------------------------------------------------- #
def measure(setup: dict, phase: int, mode: str, shared_prefix: Optional[bool],
            isolated: bool) -> dict:
    """Build one model and time its training or inference steps.

    Args:
        setup (dict): The run settings (see ``tools/benchmark.py``).
        phase (int): 1 or 2.
        mode (str): 'train' or 'infer'.
        shared_prefix (bool, optional): For phase 2.
        isolated (bool): Whether this is a fresh process of its own.

    Returns:
        dict: ``times_s``, ``images`` per step, ``peak_bytes`` and
        ``setup_bytes`` (None where not measurable).
    """
    device = torch.device(setup['device'])
    amp_dtype = AMP_DTYPES[setup['amp']]
    if setup['threads'] is not None:
        torch.set_num_threads(setup['threads'])
    model_cfg = setup[f'phase{phase}_model']
    model = build_model(model_cfg, setup['seed'], shared_prefix).to(device)
    num_images = (2 * setup['batch_size']
                  if mode == 'train' else setup['infer_batch_size'])
    inputs, samples = synthetic_batch(num_images, setup['img_size'],
                                      setup['in_channels'],
                                      model.head.num_classes, device,
                                      setup['seed'] + 1)
    memory = PeakMemory(device, isolated)
    memory.start()

    def autocast():
        return torch.autocast(
            device_type=device.type,
            dtype=amp_dtype,
            enabled=amp_dtype is not None)

    if mode == 'train':
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                f'The phase-{phase} model has no trainable parameter.')
        optimizer = torch.optim.SGD(params, **SGD_CFG)
        scaler = torch.amp.GradScaler(
            device.type, enabled=amp_dtype is torch.float16)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                losses = model.loss(inputs, samples)
            loss, _ = model.parse_losses(losses)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast():
                model.predict(inputs)

    times = time_steps(step, setup['iters'], setup['warmup'], setup['threads'])
    peak, base = memory.stop()
    return dict(
        times_s=times, images=num_images, peak_bytes=peak, setup_bytes=base)


def static_figures(setup: dict) -> dict:
    """Parameter counts, checkpoint sizes and the phase-2 geometry."""
    figures = {}
    for phase in (1, 2):
        model = build_model(setup[f'phase{phase}_model'], setup['seed'])
        figures[f'phase{phase}_params'] = count_params(model)
    bb = model.backbone  # phase 2
    with torch.no_grad():
        tokens = bb.embed(
            torch.zeros(1, setup['in_channels'], *setup['img_size']))
    counts = synthetic_class_counts(model.head.num_classes)
    meta = dict(
        model=json.loads(json.dumps(setup['phase2_model'], default=str)),
        cls_num_list=counts)
    with tempfile.TemporaryDirectory() as tmp:
        # A prompt-only file names its backbone checkpoint: give it one.
        model_cfg = save_random_backbone(setup['phase2_model'],
                                         osp.join(tmp, 'backbone.pth'),
                                         setup['seed'])
        model = build_model(model_cfg, setup['seed'])
        model.backbone.init_weights()
        prompt_file = osp.join(tmp, 'prompts.pth')
        full_file = osp.join(tmp, 'full.pth')
        save_prompt_checkpoint(model, prompt_file, meta=meta)
        torch.save(dict(state_dict=model.state_dict(), meta=meta), full_file)
        figures['ckpt_bytes'] = (osp.getsize(prompt_file),
                                 osp.getsize(full_file))
    figures['geometry'] = dict(
        num_layers=bb.num_layers,
        share_blocks=model.share_blocks,
        embed_dims=bb.embed_dims,
        ffn_dims=bb.layers[0].ffn.feedforward_channels,
        tokens=tokens.shape[1],
        prompt_length=bb.prompt.shape[1] if bb.prompt is not None else 0,
        group_prompt_length=model.neck.prompt_length,
        num_classes=model.head.num_classes)
    return figures
