"""Run a benchmark mode from the CLI options of ``tools/benchmark.py``.

:func:`run_benchmark` returns the ``- name: value`` lines, the table rows and
the raw figures; see ``docs/benchmarks/index.md``.
"""
import argparse
import os
import platform
import sys
import tempfile
from typing import List, Tuple

import torch
from mmengine.config import Config
from mmpretrain.utils import register_all_modules

from .lpt import (RUNS, SYNTHETIC_MAX_COUNT, measure, phase1_model_cfg,
                  phase2_model_cfg, static_figures, synthetic_class_counts)
from .lpt_rows import BACKWARD_FACTOR, build_rows, expected_speedups
from .measure import can_isolate, run_isolated

__all__ = ['MODES', 'make_setup', 'run_benchmark']

MODES = ('lpt', 'multitask', 'deploy', 'serve')


def make_setup(args: argparse.Namespace) -> dict:
    """The run settings (models, sizes, steps) from the CLI options."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    phase2_cfg = phase2_model_cfg(cfg, args.config)
    img_size = args.img_size or phase2_cfg['backbone'].get('img_size', 224)
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    return dict(
        phase1_model=phase1_model_cfg(phase2_cfg, args.phase1_config),
        phase2_model=phase2_cfg,
        device=str(torch.device(args.device)),
        amp=args.amp,
        img_size=tuple(img_size) * (2 // len(img_size)),
        in_channels=phase2_cfg['backbone'].get('in_channels', 3),
        batch_size=args.batch_size,
        infer_batch_size=args.infer_batch_size,
        iters=args.iters,
        warmup=args.warmup,
        threads=args.threads,
        seed=args.seed,
        compare=tuple(getattr(args, 'compare', None) or ('single', 'own')))


def run_lpt(args: argparse.Namespace, setup: dict, call) -> tuple:
    """``--mode lpt``; ``call(name, fn, *args)`` runs one measurement."""
    runs = {
        key: call(key, measure, setup, phase, mode, shared_prefix)
        for key, phase, mode, shared_prefix in RUNS
    }
    figures = call('parameters and checkpoints',
                   lambda s, _isolated: static_figures(s), setup)
    geometry = figures['geometry']
    rows = build_rows(figures, runs, expected_speedups(geometry))
    meta = dict(
        train_batch=f'2 x {args.batch_size} images per step '
        '(class-balanced + instance-balanced)',
        infer_batch=f'{args.infer_batch_size} images per step',
        timing=f'median of {args.iters} steps after {args.warmup} warm-up '
        'steps',
        class_counts=f'synthetic exponential profile, '
        f'{geometry["num_classes"]} classes, {SYNTHETIC_MAX_COUNT} down to '
        f'{synthetic_class_counts(geometry["num_classes"])[-1]} images',
        expected_from='block FLOPs, L={num_layers}, k={share_blocks}, '
        'N={tokens}, P={prompt_length}, P2={group_prompt_length}, '
        'C={embed_dims}, F={ffn_dims}, beta={beta}'.format(
            beta=BACKWARD_FACTOR, **geometry))
    extra = dict(
        bytes=dict(
            ckpt_prompt=figures['ckpt_bytes'][0],
            ckpt_full=figures['ckpt_bytes'][1]),
        geometry=geometry,
        runs=runs)
    return meta, rows, extra


def run_multitask(args: argparse.Namespace, setup: dict, call) -> tuple:
    """``--mode multitask``."""
    from .multitask import (SERVINGS, make_task_files, measure_serving,
                            multitask_rows)
    servings = getattr(args, 'servings', None) or SERVINGS
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        # In a child too: the parent runs no torch op before its forks.
        model_cfg, files = call('task files',
                                lambda *a: make_task_files(*a[:-1]),
                                setup['phase2_model'], max(args.tasks), tmp,
                                args.seed)
        for num in args.tasks:
            for serving in servings:
                runs[(num, serving)] = call(f'{num} tasks, {serving}',
                                            measure_serving, setup, model_cfg,
                                            files[:num], serving)
    rows = multitask_rows(runs, args.infer_batch_size)
    meta = dict(
        batch=f'{args.infer_batch_size} images, image j of task j % N',
        tasks='phase-2 models of CONFIG, random prompts, pools and heads, '
        'on one random backbone',
        timing=f'{args.iters} rounds after {args.warmup} warm-up rounds; a '
        'round times each step once, in turn (mixed batch; task 0: ' +
        ', '.join(
            dict(single='through the inferencer', own='its own model')[c]
            for c in setup['compare']) + '); median and quartiles over rounds',
        load_average=' / '.join(f'{x:.2f}' for x in os.getloadavg()))
    return meta, rows, dict(runs={f'{n}_{s}': r for (n, s), r in runs.items()})


def run_deploy(args: argparse.Namespace, setup: dict, _call) -> tuple:
    """``--mode deploy``."""
    from .deploy import deploy_rows, measure_backends

    # No memory figures: runs in this process.
    print('benchmark: backends ...', file=sys.stderr, flush=True)
    load = os.getloadavg()
    phases = getattr(args, 'phases', None) or (1, 2)
    rounds = getattr(args, 'rounds', None) or 3
    results = measure_backends(setup, args.backends, args.batch_sizes,
                               args.min_run_time, phases, rounds)
    meta = dict(
        model=f'phase {" and ".join(map(str, phases))} of CONFIG, random '
        'weights, images -> scores',
        timing=f'{rounds} rounds, each a torch.utils.benchmark '
        f'blocked_autorange of at least {args.min_run_time / rounds:.3g} s '
        'per backend in turn; median and IQR over all blocks',
        load_average=f'{" / ".join(f"{x:.2f}" for x in load)} (start), '
        f'{" / ".join(f"{x:.2f}" for x in os.getloadavg())} (end)')
    return meta, deploy_rows(results), dict(runs={
        f'{b}_p{p}_b{n}': r
        for (b, p, n), r in results.items()
    })


def run_serve(args: argparse.Namespace, setup: dict, _call) -> tuple:
    """``--mode serve``: the HTTP server (a subprocess) under load."""
    from .serve import measure_server, serve_rows
    load = os.getloadavg()
    results = measure_server(setup, args.config, args.tasks, args.clients,
                             args.requests, args.max_batch_size,
                             args.batch_wait_timeout_s)
    meta = dict(
        server=f'tools/deployment/serve.py, --max-batch-size '
        f'{args.max_batch_size} --batch-wait-timeout-s '
        f'{args.batch_wait_timeout_s}, one replica, local Ray (1 CPU)',
        requests=f'{args.requests} per run, request j: task j % N, a '
        f'random {setup["img_size"][0]} px PNG, raw bytes, keep-alive '
        'connections',
        baseline='the same requests one by one, decoded and passed to task '
        "0's own model in ImageClassificationInferencer (no HTTP)",
        load_average=f'{" / ".join(f"{x:.2f}" for x in load)} (start), '
        f'{" / ".join(f"{x:.2f}" for x in os.getloadavg())} (end)')
    return meta, serve_rows(results), dict(runs=results)


def run_benchmark(args: argparse.Namespace) -> Tuple[dict, List[tuple], dict]:
    """Run ``args.mode`` with the options of ``tools/benchmark.py``.

    Returns:
        tuple: ``(meta, rows, extra)``: the ``- name: value`` lines, the
        ``(key, metric, value, unit)`` rows and the raw figures for
        ``--json``.
    """
    register_all_modules(init_default_scope=False)
    setup = make_setup(args)
    device = torch.device(args.device)
    # CPU memory needs a fresh process per run (ru_maxrss never goes down);
    # fork before this process runs any parallel torch op.
    isolated = can_isolate(device)

    def call(name, fn, *fn_args):
        print(f'benchmark: {name} ...', file=sys.stderr, flush=True)
        if isolated:
            return run_isolated(name, fn, *fn_args, True)
        result = fn(*fn_args, False)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        return result

    mode_meta, rows, extra = dict(
        lpt=run_lpt,
        multitask=run_multitask,
        deploy=run_deploy,
        serve=run_serve)[args.mode](args, setup, call)

    device_name = (
        torch.cuda.get_device_name(device) if device.type == 'cuda' else
        f'{platform.processor() or platform.machine()}, '
        f'{args.threads or torch.get_num_threads()} torch thread(s)')
    meta = dict(
        config=args.config,
        mode=args.mode,
        phase1_config=args.phase1_config or 'derived from config (no neck)',
        device=f'{device} ({device_name})',
        torch=torch.__version__,
        amp=args.amp,
        img_size=list(setup['img_size']),
        **mode_meta,
        memory='torch.cuda.max_memory_allocated' if device.type == 'cuda' else
        ('peak RSS of a fresh forked process per run'
         if isolated else 'n/a (CPU without fork)'),
        weights='random (no checkpoint loaded)')
    if args.mode != 'lpt':
        meta.pop('phase1_config')
        meta.pop('amp')
    if args.mode in ('deploy', 'serve'):
        meta.pop('memory')  # not measured

    return meta, rows, extra
