"""Export many LPT tasks on one backbone as one ONNX graph, task ids an input.

Usage::

    python tools/deployment/multitask2onnx.py BACKBONE \\
        --tasks places=places_prompts.pth inat=inat_prompts.pth \\
        --output-file tasks.onnx [--shape H W] [--cfg-options k=v ...]

BACKBONE is what ``MultiTaskInferencer(backbone=...)`` takes: a config file
(its model.backbone), an LPT model name or a checkpoint. The graph maps
``input`` (B, 3, H, W) and ``task_ids`` (B,) int64 (the order of --tasks) to
``scores`` (B, M) and ``num_classes`` (B,). Needs the ``deploy`` extra. See
docs/deployment.md.
"""
import argparse
import os.path as osp

import torch

import lpt_mmpretrain  # noqa: F401  (registers the LPT modules)
from lpt_mmpretrain.apis import MultiTaskInferencer, model_config
from lpt_mmpretrain.apis.export import (add_export_arguments,
                                        export_multitask_onnx, input_shape,
                                        onnx_multitask_scores)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export LPT tasks on one backbone to one ONNX graph.')
    parser.add_argument(
        'backbone',
        help='config file, LPT model name or checkpoint of the backbone')
    parser.add_argument(
        '--tasks',
        nargs='+',
        required=True,
        metavar='NAME=FILE',
        help='the tasks, prompt-only files; their order gives the task ids')
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    tasks = [t.split('=', 1) for t in args.tasks]
    if any(len(t) != 2 or not all(t) for t in tasks):
        parser.error('--tasks takes NAME=FILE pairs, got '
                     f'{" ".join(args.tasks)}.')
    args.tasks = dict(tasks)
    if len(args.tasks) != len(tasks):
        parser.error('--tasks names must be unique.')
    if args.cfg_options and osp.isfile(args.backbone) and \
            not args.backbone.endswith('.py'):
        parser.error('--cfg-options applies to a config file or model name '
                     f'BACKBONE, not to the checkpoint {args.backbone}.')
    return args


def main(argv=None):
    args = parse_args(argv)
    backbone = args.backbone
    if args.cfg_options:
        backbone = model_config(backbone, args.cfg_options).model.backbone
    inferencer = MultiTaskInferencer(backbone, args.tasks)
    export_multitask_onnx(
        inferencer,
        args.output_file,
        args.shape,
        opset_version=args.opset_version)
    print(f'Exported tasks {inferencer.task_names} (ids 0..'
          f'{len(inferencer.task_names) - 1}) to {args.output_file}.')
    shape = tuple(args.shape) if args.shape else input_shape(inferencer)
    ids = torch.arange(2 * len(args.tasks)) % len(args.tasks)
    inputs = torch.randn(len(ids), 3, *shape)
    scores, num_classes = onnx_multitask_scores(args.output_file, inputs, ids)
    expected = inferencer.predict(inputs,
                                  [inferencer.task_names[i] for i in ids])
    diff = max(
        float((scores[j, :n] - s.pred_score).abs().max())
        for j, (n, s) in enumerate(zip(num_classes.tolist(), expected)))
    print(f'ONNX Runtime vs PyTorch on random input {tuple(inputs.shape)}: '
          f'max abs difference of the scores {diff:.3g}')
    if diff > 1e-4:
        raise SystemExit('The export does not match PyTorch (> 1e-4).')
    return inferencer


if __name__ == '__main__':
    main()
