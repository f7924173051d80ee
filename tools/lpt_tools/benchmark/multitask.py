"""Serving N tasks: one frozen backbone (:class:`MultiTaskInferencer`)
against one task's own model on it, and against N separate full models.
See ``docs/benchmarks/index.md`` and ``docs/deployment.md``."""
import json
import os.path as osp
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch

from lpt_mmpretrain.apis.multi_task_inferencer import MultiTaskInferencer
from lpt_mmpretrain.checkpoints import is_trained_key, save_prompt_checkpoint
from .lpt import build_model, save_random_backbone
from .measure import MIB, PeakMemory, count_log_lines, quartiles, tensor_bytes

__all__ = [
    'make_task_files', 'time_interleaved', 'measure_serving', 'multitask_rows'
]

SERVINGS = ('shared', 'separate')
SERVING_LABELS = {'shared': 'one backbone', 'separate': 'separate full models'}
# The single-task steps that the `shared` run can time beside the mixed
# batch, interleaved (setup['compare']).
COMPARED = ('single', 'own')


def make_task_files(model_cfg: dict, num_tasks: int, work_dir: str,
                    seed: int) -> Tuple[dict, List[str]]:
    """A random backbone checkpoint and ``num_tasks`` random tasks on it.

    One model is built; each task redraws its trained tensors (shared
    prompt, pool, keys (spread wide, so that images pick different entries),
    head) with seed ``seed + 1 + t``.

    Args:
        model_cfg (dict): A buildable model config (phase 1 or 2).
        num_tasks (int): Number of tasks.
        work_dir (str): Where to write the files.
        seed (int): Seed of the backbone.

    Returns:
        tuple: The model config with its backbone ``init_cfg`` pointing at
        the random backbone, and the prompt-only files.
    """
    model_cfg = save_random_backbone(model_cfg,
                                     osp.join(work_dir, 'backbone.pth'), seed)
    plain_cfg = json.loads(json.dumps(model_cfg, default=str))
    model = build_model(model_cfg, seed + 1)
    model.backbone.init_weights()
    files = []
    for t in range(num_tasks):
        torch.manual_seed(seed + 1 + t)
        with torch.no_grad():
            for key, param in model.named_parameters():
                if is_trained_key(key):
                    param.normal_(std=1. if key == 'neck.key' else 0.02)
        filename = osp.join(work_dir, f'task{t}_prompts.pth')
        save_prompt_checkpoint(model, filename, meta=dict(model=plain_cfg))
        files.append(filename)
    return model_cfg, files


def time_interleaved(steps: Dict[str, Callable[[], object]], iters: int,
                     warmup: int, device: torch.device) -> Dict[str, list]:
    """Seconds per call of each step, the steps alternating.

    Round r runs every step once (in turn), so a change of the machine's
    load hits all of them alike; ``warmup`` untimed rounds first.

    Returns:
        dict: ``{name: [seconds of round 0, 1, ...]}``.
    """
    times = {name: [] for name in steps}

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for r in range(warmup + iters):
        for name, step in steps.items():
            sync()
            start = time.perf_counter()
            step()
            sync()
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def measure_serving(setup: dict, model_cfg: dict, files: Sequence[str],
                    serving: str, isolated: bool) -> dict:
    """Build the models of one serving and time a mixed batch.

    The batch has ``setup['infer_batch_size']`` images, image j of task
    ``j % N``. ``shared``: one :class:`MultiTaskInferencer`, timing side by
    side (interleaved) the mixed batch and those of ``setup['compare']``: a
    batch of task 0 only through the inferencer (``single``), and task 0's
    own ``LPTClassifier.predict`` on the same backbone (``own``).
    ``separate``: each full model classifies its images.

    Returns:
        dict: ``weight_bytes`` (parameters and buffers held), memory
        ``before_bytes`` (before building), ``setup_bytes``, ``peak_bytes``
        (None where not measurable), ``build_s`` and ``build_log_lines``
        (building and loading the models: seconds, lines given to MMEngine's
        logger), ``times_s`` (mixed batch) and, for ``shared``,
        ``single_times_s`` / ``own_times_s`` as compared.
    """
    device = torch.device(setup['device'])
    if setup['threads'] is not None:
        torch.set_num_threads(setup['threads'])
    before = PeakMemory(device, isolated)
    before.start()
    num = len(files)
    build_start = time.perf_counter()
    with count_log_lines() as log:
        if serving == 'shared':
            inferencer = MultiTaskInferencer(
                model_cfg['backbone'], {
                    f't{i}': f
                    for i, f in enumerate(files)
                },
                device=str(device))
        elif serving == 'separate':
            models = []
            for i, _ in enumerate(files):
                model = build_model(model_cfg, setup['seed'] + 1 + i)
                model.backbone.init_weights()
                model.to(device)
                model.eval()
                models.append(model)
        else:
            raise ValueError(
                f'serving must be one of {SERVINGS}, got {serving}.')
    build_s = time.perf_counter() - build_start
    if serving == 'shared':
        weight_bytes = tensor_bytes(inferencer.model)
        compare = setup.get('compare', COMPARED)
        own = inferencer.task_model('t0') if 'own' in compare else None
    else:
        weight_bytes = sum(tensor_bytes(m) for m in models)
    batch = setup['infer_batch_size']
    gen = torch.Generator().manual_seed(setup['seed'])
    inputs = torch.randn(
        batch, setup['in_channels'], *setup['img_size'],
        generator=gen).to(device)
    tasks = [f't{j % num}' for j in range(batch)]
    memory = PeakMemory(device, isolated)
    memory.start()
    result = dict(
        weight_bytes=weight_bytes,
        before_bytes=before.base,
        build_s=build_s,
        build_log_lines=log.lines)

    if serving == 'shared':
        steps = dict(
            mixed=lambda: inferencer.predict(inputs, tasks),
            single=lambda: inferencer.predict(inputs, ['t0'] * batch),
            own=lambda: own.predict(inputs))
        steps = {
            k: v
            for k, v in steps.items() if k == 'mixed' or k in compare
        }
    else:
        # Task t has images t, t + N, ... (none when N > batch and t >= batch)
        index = [
            torch.arange(t, max(t, batch), num, device=device)
            for t in range(num)
        ]

        def separate():
            for model, idx in zip(models, index):
                if len(idx):
                    model.predict(inputs[idx])

        steps = dict(mixed=separate)
    with torch.no_grad():
        times = time_interleaved(steps, setup['iters'], setup['warmup'],
                                 device)
    result['times_s'] = times.pop('mixed')
    result.update({f'{name}_times_s': t for name, t in times.items()})
    peak, base = memory.stop()
    result.update(peak_bytes=peak, setup_bytes=base)
    return result


def multitask_rows(runs: Dict[Tuple[int, str], dict],
                   batch: int) -> List[Tuple[str, str, object, str]]:
    """(key, metric, value, unit) rows of the multi-task table.

    Throughputs are ``batch / median step time``, with the interquartile
    range over the rounds; the ratios are the median (and quartiles) of the
    per-round ratios of the interleaved steps: mixed-batch over single-task
    throughput.
    """
    rows = []
    for (num, serving), run in runs.items():
        key, label = f'n{num}_{serving}', (f'{num} task(s), '
                                           f'{SERVING_LABELS[serving]}')

        def mib(value):
            return None if value is None else value / MIB

        held = (None if run['before_bytes'] is None
                or run['setup_bytes'] is None else run['setup_bytes'] -
                run['before_bytes'])
        rows += [
            (f'{key}_weights_mib', f'{label}: weights held',
             run['weight_bytes'] / MIB, 'MiB'),
            (f'{key}_setup_mib', f'{label}: memory of the built models',
             mib(held), 'MiB'),
            (f'{key}_peak_mib', f'{label}: peak memory',
             mib(run['peak_bytes']), 'MiB'),
            (f'{key}_build_s', f'{label}: building and loading the models',
             run['build_s'], 's'),
            (f'{key}_build_log_lines', f'{label}: log lines while building',
             run['build_log_lines'], 'lines'),
        ]
        names = [('', 'mixed batch', run['times_s'])]
        if 'single_times_s' in run:
            names.append(('_single', 'task 0 only, through the inferencer',
                          run['single_times_s']))
        if 'own_times_s' in run:
            names.append(('_own', 'task 0 only, its own LPTClassifier.predict',
                          run['own_times_s']))
        for suffix, what, times in names:
            q1, median, q3 = quartiles(times)
            rows += [
                (f'{key}{suffix}_img_s', f'{label}: throughput, {what}',
                 batch / median, 'img/s'),
                (f'{key}{suffix}_img_s_p25', f'{label}: throughput, {what}, '
                 '25th percentile of rounds', batch / q3, 'img/s'),
                (f'{key}{suffix}_img_s_p75', f'{label}: throughput, {what}, '
                 '75th percentile of rounds', batch / q1, 'img/s'),
            ]
        for ref in COMPARED:
            if f'{ref}_times_s' not in run:
                continue
            ratios = [
                r / m for r, m in zip(run[f'{ref}_times_s'], run['times_s'])
            ]
            q1, median, q3 = quartiles(ratios)
            what = (f'{label}: mixed / single-task throughput (' +
                    ('through the inferencer'
                     if ref == 'single' else 'its own model') + ')')
            rows += [
                (f'{key}_ratio_{ref}', f'{what}, median of rounds', median,
                 'x'),
                (f'{key}_ratio_{ref}_p25', f'{what}, 25th percentile', q1,
                 'x'),
                (f'{key}_ratio_{ref}_p75', f'{what}, 75th percentile', q3,
                 'x'),
            ]
    return rows
