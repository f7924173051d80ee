"""Export an LPT (phase 1 or 2) model to ONNX and check it with ONNX Runtime.

Usage::

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT \\
        --output-file model.onnx [--shape H W] [--dynamic-batch] \\
        [--cfg-options model.backbone.init_cfg.checkpoint=vit.pth ...]

CHECKPOINT is a full or a prompt-only file. Needs the ``deploy`` extra
(``pip install -e .[deploy]``). See docs/deployment.md.
"""
import argparse

import torch

import lpt_mmpretrain  # noqa: F401  (registers the LPT modules)
from lpt_mmpretrain.apis.export import (add_export_arguments,
                                        build_model_from_checkpoint,
                                        export_onnx, input_shape, onnx_scores)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export an LPT model to ONNX (images -> scores).')
    parser.add_argument(
        'config', help='the model config (file or LPT model name)')
    parser.add_argument('checkpoint', help='a full or prompt-only checkpoint')
    add_export_arguments(parser)
    parser.add_argument(
        '--dynamic-batch',
        action='store_true',
        help='let the batch size vary (default: batch 1)')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='skip comparing ONNX Runtime with PyTorch on random input')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = build_model_from_checkpoint(
        args.config, args.checkpoint, cfg_options=args.cfg_options)
    export_onnx(model, args.output_file, args.shape, args.dynamic_batch,
                args.opset_version)
    print(f'Exported {args.config} + {args.checkpoint} to '
          f'{args.output_file}.')
    if args.no_verify:
        return
    shape = tuple(args.shape) if args.shape else input_shape(model)
    inputs = torch.randn(3 if args.dynamic_batch else 1, 3, *shape)
    with torch.no_grad():
        expected = model.predict(inputs)
    expected = torch.stack([s.pred_score for s in expected])
    diff = (onnx_scores(args.output_file, inputs) - expected).abs().max()
    print(f'ONNX Runtime vs PyTorch on random input {tuple(inputs.shape)}: '
          f'max abs difference of the scores {float(diff):.3g}')
    if diff > 1e-4:
        raise SystemExit('The export does not match PyTorch (> 1e-4).')


if __name__ == '__main__':
    main()
