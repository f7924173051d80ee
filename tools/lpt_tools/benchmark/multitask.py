"""Serving N tasks: one frozen backbone (:class:`MultiTaskInferencer`)
against N separate full models. See ``docs/benchmark.md``."""
import json
import os.path as osp
import statistics
from typing import Dict, List, Sequence, Tuple

import torch

from lpt_mmpretrain.apis.multi_task_inferencer import MultiTaskInferencer
from lpt_mmpretrain.checkpoints import save_prompt_checkpoint
from .lpt import build_model, save_random_backbone
from .measure import MIB, PeakMemory, tensor_bytes, time_steps

__all__ = ['make_task_files', 'measure_serving', 'multitask_rows']

SERVINGS = ('shared', 'separate')
SERVING_LABELS = {
    'shared': 'one backbone',
    'separate': 'separate full models'
}


def make_task_files(model_cfg: dict, num_tasks: int, work_dir: str,
                    seed: int) -> Tuple[dict, List[str]]:
    """A random backbone checkpoint and ``num_tasks`` random tasks on it.

    Args:
        model_cfg (dict): A buildable model config (phase 1 or 2).
        num_tasks (int): Number of tasks.
        work_dir (str): Where to write the files.
        seed (int): Seed of the backbone; task t uses ``seed + 1 + t``.

    Returns:
        tuple: The model config with its backbone ``init_cfg`` pointing at
        the random backbone, and the prompt-only files.
    """
    model_cfg = save_random_backbone(model_cfg,
                                     osp.join(work_dir, 'backbone.pth'), seed)
    plain_cfg = json.loads(json.dumps(model_cfg, default=str))
    files = []
    for t in range(num_tasks):
        model = build_model(model_cfg, seed + 1 + t)
        model.backbone.init_weights()
        filename = osp.join(work_dir, f'task{t}_prompts.pth')
        save_prompt_checkpoint(model, filename, meta=dict(model=plain_cfg))
        files.append(filename)
    return model_cfg, files


def measure_serving(setup: dict, model_cfg: dict, files: Sequence[str],
                    serving: str, isolated: bool) -> dict:
    """Build the models of one serving and time a mixed batch.

    The batch has ``setup['infer_batch_size']`` images, image j of task
    ``j % N``. ``shared``: one :class:`MultiTaskInferencer` pass; also a
    batch of task 0 only. ``separate``: each full model classifies its
    images.

    Returns:
        dict: ``weight_bytes`` (parameters and buffers held), memory
        ``before_bytes`` (before building), ``setup_bytes``, ``peak_bytes``
        (None where not measurable), ``times_s`` (mixed batch) and, for
        ``shared``, ``single_times_s``.
    """
    device = torch.device(setup['device'])
    if setup['threads'] is not None:
        torch.set_num_threads(setup['threads'])
    before = PeakMemory(device, isolated)
    before.start()
    num = len(files)
    if serving == 'shared':
        inferencer = MultiTaskInferencer(
            model_cfg['backbone'], {f't{i}': f
                                    for i, f in enumerate(files)},
            device=str(device))
        weight_bytes = tensor_bytes(inferencer.backbone) + sum(
            tensor_bytes(t.head) +
            (0 if t.neck is None else tensor_bytes(t.neck)) +
            (0 if t.prompt is None else t.prompt.numel() * 4)
            for t in inferencer._tasks.values())
    elif serving == 'separate':
        models = []
        for i, _ in enumerate(files):
            model = build_model(model_cfg, setup['seed'] + 1 + i)
            model.backbone.init_weights()
            model.to(device)
            model.eval()
            models.append(model)
        weight_bytes = sum(tensor_bytes(m) for m in models)
    else:
        raise ValueError(f'serving must be one of {SERVINGS}, got {serving}.')
    batch = setup['infer_batch_size']
    gen = torch.Generator().manual_seed(setup['seed'])
    inputs = torch.randn(batch, setup['in_channels'], *setup['img_size'],
                         generator=gen).to(device)
    tasks = [f't{j % num}' for j in range(batch)]
    memory = PeakMemory(device, isolated)
    memory.start()
    result = dict(weight_bytes=weight_bytes, before_bytes=before.base)

    if serving == 'shared':

        def step():
            inferencer.predict(inputs, tasks)

        def single():
            inferencer.predict(inputs, ['t0'] * batch)

        result['single_times_s'] = time_steps(single, setup['iters'],
                                              setup['warmup'],
                                              setup['threads'])
    else:
        index = [
            torch.arange(t, batch, num, device=device) for t in range(num)
        ]

        def step():
            with torch.no_grad():
                for model, idx in zip(models, index):
                    if len(idx):
                        model.predict(inputs[idx])

    result['times_s'] = time_steps(step, setup['iters'], setup['warmup'],
                                   setup['threads'])
    peak, base = memory.stop()
    result.update(peak_bytes=peak, setup_bytes=base)
    return result


def multitask_rows(runs: Dict[Tuple[int, str], dict],
                   batch: int) -> List[Tuple[str, str, object, str]]:
    """(key, metric, value, unit) rows of the multi-task table."""
    rows = []
    for (num, serving), run in runs.items():
        key, label = f'n{num}_{serving}', (f'{num} task(s), '
                                          f'{SERVING_LABELS[serving]}')

        def mib(value):
            return None if value is None else value / MIB

        held = (None if run['before_bytes'] is None or run['setup_bytes'] is
                None else run['setup_bytes'] - run['before_bytes'])
        rows += [
            (f'{key}_weights_mib', f'{label}: weights held',
             run['weight_bytes'] / MIB, 'MiB'),
            (f'{key}_setup_mib', f'{label}: memory of the built models',
             mib(held), 'MiB'),
            (f'{key}_peak_mib', f'{label}: peak memory',
             mib(run['peak_bytes']), 'MiB'),
            (f'{key}_img_s', f'{label}: throughput, mixed batch',
             batch / statistics.median(run['times_s']), 'img/s'),
        ]
        if 'single_times_s' in run:
            rows.append(
                (f'{key}_single_img_s',
                 f'{label}: throughput, single-task batch',
                 batch / statistics.median(run['single_times_s']), 'img/s'))
    return rows
