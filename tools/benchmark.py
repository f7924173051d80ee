"""Benchmark LPT: parameters, checkpoint sizes, speed and memory.

Usage::

    python tools/benchmark.py CONFIG [--phase1-config CFG1] \\
        [--batch-size 32] [--infer-batch-size 64] [--iters 10] [--warmup 3] \\
        [--device cpu|cuda] [--amp none|fp16|bf16] [--img-size H [W]] \\
        [--threads N] [--seed 0] [--json OUT] [--cfg-options k=v ...]

CONFIG is a phase-2 (``LPTClassifier``) config. The phase-1 model is derived
from it (same backbone and head, no neck: an MMPretrain ``ImageClassifier``)
unless ``--phase1-config`` names a phase-1 config; ``--cfg-options`` applies
to CONFIG only. Models are built from the configs with random weights: no
checkpoint is loaded (``init_weights`` is not called), which changes neither
speed nor memory; phase 2 runs with ``allow_no_phase1=True``. The A-GCL loss
needs training class counts: every module with ``set_cls_num_list`` gets a
synthetic exponential long-tailed profile over the head's classes
(``n_i = int(500 * 0.01 ** (i / (C - 1)))``, at least 1).

Each step works on a synthetic, already normalised batch; data loading and
the data preprocessor are not measured.

- Training step: ``model.loss`` on ``2 x --batch-size`` images (one
  class-balanced and one instance-balanced batch, told apart by the
  ``sampling_stream`` metainfo as ``DualClassBalancedSampler`` produces them),
  the losses summed, backward, SGD step (momentum 0.9, weight decay 0.01)
  over the trainable parameters. Throughput = images per step / step time.
- Inference step: ``model.predict`` on ``--infer-batch-size`` images in eval
  mode under ``torch.no_grad``.
- ``--amp fp16|bf16``: ``torch.autocast`` around the forward pass (and a
  ``GradScaler`` for fp16 training).
- Step time: the median over ``--iters`` steps after ``--warmup`` steps,
  timed with ``time.perf_counter`` (after ``torch.cuda.synchronize`` on
  CUDA). ``--threads N`` sets ``torch.set_num_threads`` for the runs. On a
  CPU shared with other busy processes, PyTorch's default (one thread per
  core) can make identical steps vary by 10x or more, as threads wait for
  each other at every parallel region; ``--threads 1`` gives stable figures
  there.
- Peak memory ("setup" = the model and the batch built, before the first
  step; the peak covers the warm-up and the timed steps):

  * CUDA: ``torch.cuda.max_memory_allocated`` (reset at setup), and the same
    minus ``torch.cuda.memory_allocated`` at setup.
  * CPU: PyTorch's CPU allocator keeps no statistics and ``ru_maxrss`` never
    goes down, so every CPU measurement runs in a fresh child process
    (``fork``): the peak is the child's ``ru_maxrss`` (it includes Python,
    the libraries and the weights), "above setup" subtracts the child's
    resident set size at setup. "Above setup" also holds one-off costs of
    the first operations (code pages, thread arenas: a few tens of MiB, the
    same in every run), and can read a little low where the allocator
    reuses memory freed during setup. Where ``fork`` is not available the
    memory rows read ``n/a``.

Output: a few ``- name: value`` lines (config, device, torch version, AMP,
batch sizes, the class-count profile, the figures behind the expected
speed-ups), then ONE markdown table ``| metric | value | unit |``. Its rows,
in this order (``[key]`` is the name ``--json`` uses, MiB = 2**20 bytes):

- ``phase-{1,2} parameters, total`` [``phase{1,2}_params_total``], params;
  ``... trainable`` [``phase{1,2}_params_trainable``], params
  (``requires_grad``); ``phase-{1,2} trainable ratio``
  [``phase{1,2}_trainable_pct``], % of the total.
- ``phase-2 prompt-only checkpoint`` [``ckpt_prompt_mib``], MiB: the file
  ``save_prompt_checkpoint`` writes; ``phase-2 full checkpoint``
  [``ckpt_full_mib``], MiB: ``torch.save`` of the whole state dict (same
  ``meta``); ``prompt-only / full checkpoint`` [``ckpt_ratio_pct``], %.
- For every run ``<run>`` (label / key): ``phase-1 train`` /
  ``phase1_train``, ``phase-2 train, shared-prefix`` /
  ``phase2_train_shared``, ``phase-2 train, naive`` / ``phase2_train_naive``,
  ``phase-1 inference`` / ``phase1_infer``, ``phase-2 inference,
  shared-prefix`` / ``phase2_infer_shared``, ``phase-2 inference, naive`` /
  ``phase2_infer_naive``: ``<run> throughput`` [``<key>_img_s``], img/s;
  ``<run> peak memory`` [``<key>_peak_mib``], MiB; ``<run> peak memory above
  setup`` [``<key>_extra_mib``], MiB. "shared-prefix" is
  ``shared_prefix=True``, "naive" the paper's two full passes
  (``shared_prefix=False``).
- ``phase-2 train speed-up, shared-prefix over naive, measured``
  [``phase2_train_speedup``] and ``..., expected``
  [``phase2_train_speedup_expected``], x; the same for inference
  [``phase2_infer_speedup``, ``phase2_infer_speedup_expected``]. A speed-up
  is the naive step time over the shared-prefix step time.

``--json OUT`` writes ``meta``, ``figures`` and ``units`` (keyed as above),
the checkpoint sizes in bytes, the model geometry and the raw step times and
memory figures of every run.

Expected speed-ups (phase 2, per image): with L blocks, k = share_blocks,
N tokens out of the embedding (CLS + patches), P shared and P2 group prompt
tokens, width C and FFN width F, one block on T tokens costs

    f(T) = 8 T C^2 + 4 T C F + 4 T^2 C  FLOPs

(qkv and projection 4 T C^2, FFN 2 T C F, attention 2 T^2 C multiply-adds).
With f0 = f(N + P) (shared prompt only) and f1 = f(N + P + P2) (shared and
group prompts):

    inference, shared = L f0 + (L - k) f1          (prefix once)
    inference, naive  = L f0 + k f0 + (L - k) f1   (query pass + full pass)
    training adds beta (L - k) f1 to both: backward runs through blocks
    [k, L) only, in both paths.

beta = 1: the backbone is frozen, so its backward computes activation
gradients only (one matrix product per forward one) and no weight gradients.
The patch embedding (computed twice by the naive path, < 1% of a pass for
ViT-B), the neck, the head and the SGD step are left out. With equal block
costs this is ``2L / (2L - k)`` for inference and ``(3L - k) / (3L - 2k)``
for training: 1.333 and 1.25 for L = 12, k = 6.
"""
import argparse
import copy
import json
import multiprocessing
import os
import os.path as osp
import platform
import resource
import statistics
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from mmpretrain.utils import register_all_modules

import lpt_mmpretrain  # noqa: F401  (registers the LPT modules)
from lpt_mmpretrain.engine.prompt_checkpoint import save_prompt_checkpoint
from lpt_mmpretrain.models.utils.dual_stream import (STREAM_CB, STREAM_IB,
                                                     STREAM_KEY)

# Synthetic long-tailed class counts for A-GCL: CIFAR-100-LT's profile
# (largest class 500, imbalance ratio 100). Speed does not depend on them.
SYNTHETIC_MAX_COUNT = 500
SYNTHETIC_IMBALANCE = 100
# The spec's optimizer; the values do not change the step time.
SGD_CFG = dict(lr=0.01, momentum=0.9, weight_decay=0.01)
# Backward / forward cost of a frozen block (activation gradients only).
BACKWARD_FACTOR = 1.0
MIB = 2**20

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
RUN_LABELS = {
    'phase1_train': 'phase-1 train',
    'phase2_train_shared': 'phase-2 train, shared-prefix',
    'phase2_train_naive': 'phase-2 train, naive',
    'phase1_infer': 'phase-1 inference',
    'phase2_infer_shared': 'phase-2 inference, shared-prefix',
    'phase2_infer_naive': 'phase-2 inference, naive',
}
# Keys of the phase-2 model config that an ImageClassifier does not take.
PHASE2_ONLY_KEYS = ('neck', 'share_blocks', 'match_loss_weight',
                    'phase1_checkpoint', 'allow_no_phase1', 'shared_prefix')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark LPT: parameters, checkpoint sizes, training '
        'and inference speed and memory, shared-prefix vs naive.')
    parser.add_argument('config', help='phase-2 (LPTClassifier) config')
    parser.add_argument(
        '--phase1-config',
        help='phase-1 config (default: derived from CONFIG, no neck)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=32,
        help='images per sampling stream in a training step (the step sees '
        '2 x this: class-balanced + instance-balanced)')
    parser.add_argument(
        '--infer-batch-size',
        type=int,
        default=64,
        help='images per inference step')
    parser.add_argument(
        '--iters', type=int, default=10, help='timed steps per run')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed steps before them')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda[:N] (default: cuda if available)')
    parser.add_argument(
        '--amp',
        choices=list(AMP_DTYPES),
        default='none',
        help='autocast dtype of the forward pass')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs='+',
        help='input size H [W] (default: the backbone img_size of CONFIG)')
    parser.add_argument(
        '--threads',
        type=int,
        help='torch.set_num_threads for the runs (default: torch default)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of weights and batches')
    parser.add_argument('--json', help='also write the figures to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of CONFIG, e.g. model.share_blocks=4')
    args = parser.parse_args(argv)

    for name in ('batch_size', 'infer_batch_size', 'iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1.')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0.')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be >= 1.')
    if args.img_size is not None and (len(args.img_size) > 2
                                      or min(args.img_size) < 1):
        parser.error('--img-size takes one or two positive sizes: H [W].')
    device = torch.device(args.device)
    if device.type not in ('cpu', 'cuda'):
        parser.error(f'--device must be cpu or cuda[:N], got {args.device}.')
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but torch sees no CUDA device; use '
                     '--device cpu.')
    if (args.amp == 'bf16' and device.type == 'cuda'
            and not torch.cuda.is_bf16_supported()):
        parser.error('--amp bf16: this GPU does not support bfloat16; use '
                     '--amp fp16.')
    return args


# ---------------------------------------------------------------------- #
# configs and models
# ---------------------------------------------------------------------- #
def phase2_model_cfg(cfg: Config, path: str) -> dict:
    """The phase-2 model config, buildable without a phase-1 checkpoint."""
    model_cfg = cfg.model.to_dict()
    if model_cfg.get('type') != 'LPTClassifier':
        raise ValueError(
            f'{path} builds a {model_cfg.get("type")}, not an '
            'LPTClassifier: pass a phase-2 config (configs/lpt/phase2_*.py) '
            'as CONFIG and a phase-1 config as --phase1-config.')
    model_cfg.update(allow_no_phase1=True, phase1_checkpoint=None)
    return model_cfg


def phase1_model_cfg(phase2_cfg: dict,
                     phase1_config: Optional[str] = None) -> dict:
    """The phase-1 model config: from ``phase1_config`` or derived."""
    if phase1_config is not None:
        model_cfg = Config.fromfile(phase1_config).model.to_dict()
        if model_cfg.get('type') == 'LPTClassifier':
            raise ValueError(f'--phase1-config {phase1_config} is a phase-2 '
                             '(LPTClassifier) config; pass a phase-1 config '
                             '(configs/lpt/phase1_*.py) or leave it out.')
        return model_cfg
    model_cfg = copy.deepcopy(phase2_cfg)
    for key in PHASE2_ONLY_KEYS:
        model_cfg.pop(key, None)
    model_cfg['type'] = 'ImageClassifier'
    return model_cfg


def synthetic_class_counts(num_classes: int) -> List[int]:
    """An exponential long-tailed profile of training class counts."""
    if num_classes == 1:
        return [SYNTHETIC_MAX_COUNT]
    return [
        max(
            1,
            int(SYNTHETIC_MAX_COUNT *
                (1 / SYNTHETIC_IMBALANCE)**(i / (num_classes - 1))))
        for i in range(num_classes)
    ]


def build_model(model_cfg: dict,
                seed: int,
                shared_prefix: Optional[bool] = None) -> nn.Module:
    """Build a model with random weights and synthetic class counts."""
    model_cfg = copy.deepcopy(model_cfg)
    if shared_prefix is not None:
        model_cfg['shared_prefix'] = shared_prefix
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)  # no init_weights: nothing is loaded
    counts = synthetic_class_counts(model.head.num_classes)
    for module in model.modules():
        if (callable(getattr(module, 'set_cls_num_list', None))
                and getattr(module, 'cls_num_list', None) is None):
            module.set_cls_num_list(counts)
    return model


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


def count_params(model: nn.Module) -> Tuple[int, int]:
    """(total, trainable) parameter counts."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))


# ---------------------------------------------------------------------- #
# measurements
# ---------------------------------------------------------------------- #
def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _current_rss() -> Optional[int]:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


def _max_rss() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == 'darwin' else maxrss * 1024  # KiB


class PeakMemory:
    """Peak memory of a measurement (see the module docstring).

    Args:
        device (torch.device): Where the measurement runs.
        isolated (bool): Whether it runs in its own fresh process (needed
            for the CPU figures).
    """

    def __init__(self, device: torch.device, isolated: bool) -> None:
        self.device = device
        self.isolated = isolated
        self.base: Optional[int] = None

    def start(self) -> None:
        """Record the setup level and reset the peak."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.isolated:
            self.base = _current_rss() or _max_rss()

    def stop(self) -> Tuple[Optional[int], Optional[int]]:
        """(peak bytes, setup bytes); None where not measurable."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device), self.base
        if self.isolated:
            return _max_rss(), self.base
        return None, None


def _time_steps(step: Callable[[], object], device: torch.device, iters: int,
                warmup: int) -> List[float]:
    for _ in range(warmup):
        step()
    _synchronize(device)
    times = []
    for _ in range(iters):
        _synchronize(device)
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def measure(setup: dict, phase: int, mode: str, shared_prefix: Optional[bool],
            isolated: bool) -> dict:
    """Build one model and time its training or inference steps.

    Args:
        setup (dict): The run settings made by :func:`main`.
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

    times = _time_steps(step, device, setup['iters'], setup['warmup'])
    peak, base = memory.stop()
    return dict(
        times_s=times, images=num_images, peak_bytes=peak, setup_bytes=base)


def block_flops(tokens: int, embed_dims: int, ffn_dims: int) -> int:
    """FLOPs of one ViT block on ``tokens`` tokens (see the docstring)."""
    return (8 * tokens * embed_dims**2 + 4 * tokens * embed_dims * ffn_dims +
            4 * tokens**2 * embed_dims)


def expected_speedups(geometry: dict,
                      beta: float = BACKWARD_FACTOR) -> Dict[str, float]:
    """Naive / shared-prefix cost ratios of phase 2 from block FLOPs."""
    L, k = geometry['num_layers'], geometry['share_blocks']
    C, F = geometry['embed_dims'], geometry['ffn_dims']
    N, P, P2 = (geometry['tokens'], geometry['prompt_length'],
                geometry['group_prompt_length'])
    f0, f1 = block_flops(N + P, C, F), block_flops(N + P + P2, C, F)
    infer_shared = L * f0 + (L - k) * f1
    infer_naive = infer_shared + k * f0
    backward = beta * (L - k) * f1
    return dict(
        train=(infer_naive + backward) / (infer_shared + backward),
        infer=infer_naive / infer_shared)


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


def _child(conn, fn: Callable, args: tuple) -> None:
    try:
        result = fn(*args)
    except BaseException:  # report everything, the parent raises it
        conn.send(('error', traceback.format_exc()))
    else:
        conn.send(('ok', result))
    finally:
        conn.close()


def run_isolated(name: str, fn: Callable, *args):
    """Run ``fn(*args)`` in a forked child process and return its result."""
    ctx = multiprocessing.get_context('fork')
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, fn, args))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(
            f'The child process measuring {name} died with exit code '
            f'{process.exitcode} (out of memory? lower --batch-size / '
            '--infer-batch-size).') from None
    process.join()
    if status == 'error':
        raise RuntimeError(f'Measuring {name} failed:\n{payload}')
    return payload


# ---------------------------------------------------------------------- #
# report
# ---------------------------------------------------------------------- #
UNIT_FORMATS = {
    'params': '{:d}',
    '%': '{:.3f}',
    'MiB': '{:.3f}',
    'img/s': '{:.2f}',
    'x': '{:.3f}',
}


def build_rows(figures: dict, runs: Dict[str, dict],
               expected: Dict[str,
                              float]) -> List[Tuple[str, str, object, str]]:
    """(key, metric, value, unit) of every table row, in order."""
    rows = []
    for phase in (1, 2):
        total, trainable = figures[f'phase{phase}_params']
        rows += [
            (f'phase{phase}_params_total', f'phase-{phase} parameters, total',
             total, 'params'),
            (f'phase{phase}_params_trainable',
             f'phase-{phase} parameters, trainable', trainable, 'params'),
            (f'phase{phase}_trainable_pct', f'phase-{phase} trainable ratio',
             100. * trainable / total, '%'),
        ]
    prompt_bytes, full_bytes = figures['ckpt_bytes']
    rows += [
        ('ckpt_prompt_mib', 'phase-2 prompt-only checkpoint',
         prompt_bytes / MIB, 'MiB'),
        ('ckpt_full_mib', 'phase-2 full checkpoint', full_bytes / MIB, 'MiB'),
        ('ckpt_ratio_pct', 'prompt-only / full checkpoint',
         100. * prompt_bytes / full_bytes, '%'),
    ]
    for key, *_ in RUNS:
        run, label = runs[key], RUN_LABELS[key]
        peak, base = run['peak_bytes'], run['setup_bytes']
        rows += [
            (f'{key}_img_s', f'{label} throughput',
             run['images'] / statistics.median(run['times_s']), 'img/s'),
            (f'{key}_peak_mib', f'{label} peak memory',
             None if peak is None else peak / MIB, 'MiB'),
            (f'{key}_extra_mib', f'{label} peak memory above setup',
             None if peak is None else (peak - base) / MIB, 'MiB'),
        ]
    for mode, label in (('train', 'train'), ('infer', 'inference')):
        shared = statistics.median(runs[f'phase2_{mode}_shared']['times_s'])
        naive = statistics.median(runs[f'phase2_{mode}_naive']['times_s'])
        rows += [
            (f'phase2_{mode}_speedup',
             f'phase-2 {label} speed-up, shared-prefix over naive, '
             'measured', naive / shared, 'x'),
            (f'phase2_{mode}_speedup_expected',
             f'phase-2 {label} speed-up, shared-prefix over naive, '
             'expected', expected[mode], 'x'),
        ]
    return rows


def format_table(rows: Sequence[Tuple[str, str, object, str]]) -> str:
    lines = ['| metric | value | unit |', '|---|---|---|']
    for _, metric, value, unit in rows:
        text = 'n/a' if value is None else UNIT_FORMATS[unit].format(value)
        lines.append(f'| {metric} | {text} | {unit} |')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    phase2_cfg = phase2_model_cfg(cfg, args.config)
    phase1_cfg = phase1_model_cfg(phase2_cfg, args.phase1_config)

    img_size = args.img_size or phase2_cfg['backbone'].get('img_size', 224)
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    img_size = tuple(img_size) * (2 // len(img_size))
    device = torch.device(args.device)
    setup = dict(
        phase1_model=phase1_cfg,
        phase2_model=phase2_cfg,
        device=str(device),
        amp=args.amp,
        img_size=img_size,
        in_channels=phase2_cfg['backbone'].get('in_channels', 3),
        batch_size=args.batch_size,
        infer_batch_size=args.infer_batch_size,
        iters=args.iters,
        warmup=args.warmup,
        threads=args.threads,
        seed=args.seed)

    # CPU memory needs a fresh process per run (ru_maxrss never goes down);
    # fork before this process runs any parallel torch op.
    isolated = (
        device.type == 'cpu'
        and 'fork' in multiprocessing.get_all_start_methods())

    def call(name, fn, *fn_args):
        print(f'benchmark: {name} ...', file=sys.stderr, flush=True)
        if isolated:
            return run_isolated(name, fn, *fn_args, True)
        result = fn(*fn_args, False)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        return result

    runs = {
        key: call(key, measure, setup, phase, mode, shared_prefix)
        for key, phase, mode, shared_prefix in RUNS
    }
    figures = call('parameters and checkpoints',
                   lambda s, _isolated: static_figures(s), setup)
    geometry = figures['geometry']
    expected = expected_speedups(geometry)
    rows = build_rows(figures, runs, expected)

    device_name = (
        torch.cuda.get_device_name(device) if device.type == 'cuda' else
        f'{platform.processor() or platform.machine()}, '
        f'{args.threads or torch.get_num_threads()} torch thread(s)')
    meta = dict(
        config=args.config,
        phase1_config=args.phase1_config or 'derived from config (no neck)',
        device=f'{device} ({device_name})',
        torch=torch.__version__,
        amp=args.amp,
        img_size=list(img_size),
        train_batch=f'2 x {args.batch_size} images per step '
        '(class-balanced + instance-balanced)',
        infer_batch=f'{args.infer_batch_size} images per step',
        timing=f'median of {args.iters} steps after {args.warmup} warm-up '
        'steps',
        memory='torch.cuda.max_memory_allocated' if device.type == 'cuda' else
        ('peak RSS of a fresh forked process per run'
         if isolated else 'n/a (CPU without fork)'),
        weights='random (no checkpoint loaded)',
        class_counts=f'synthetic exponential profile, '
        f'{geometry["num_classes"]} classes, {SYNTHETIC_MAX_COUNT} down to '
        f'{synthetic_class_counts(geometry["num_classes"])[-1]} images',
        expected_from='block FLOPs, L={num_layers}, k={share_blocks}, '
        'N={tokens}, P={prompt_length}, P2={group_prompt_length}, '
        'C={embed_dims}, F={ffn_dims}, beta={beta}'.format(
            beta=BACKWARD_FACTOR, **geometry))

    print(f'# LPT benchmark: {args.config}\n')
    for key, value in meta.items():
        print(f'- {key}: {value}')
    print()
    print(format_table(rows))

    if args.json:
        out_dir = osp.dirname(osp.abspath(args.json))
        os.makedirs(out_dir, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    meta=meta,
                    figures={
                        key: value
                        for key, _, value, _ in rows
                    },
                    units={
                        key: unit
                        for key, _, _, unit in rows
                    },
                    bytes=dict(
                        ckpt_prompt=figures['ckpt_bytes'][0],
                        ckpt_full=figures['ckpt_bytes'][1]),
                    geometry=geometry,
                    runs=runs),
                f,
                indent=2)


if __name__ == '__main__':
    main()
