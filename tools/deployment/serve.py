"""Serve many LPT tasks on one frozen backbone over HTTP (Ray Serve).

    python tools/deployment/serve.py CONFIG --tasks NAME=PROMPT_FILE [...] \
        [--address RAY_ADDRESS] [--host 127.0.0.1] [--port 8000] \
        [--max-batch-size 16] [--batch-wait-timeout-s 0.01] \
        [--max-image-bytes 20971520] [--max-image-pixels 40000000] \
        [--num-cpus 1] [--device cpu] [--threads N]

CONFIG gives the backbone (``model.backbone``), the test pipeline and the
data preprocessor. Needs the ``serve`` extra (``pip install -e .[serve]``).
A short CLI over :func:`lpt_mmpretrain.serving.launch.serve_forever`; the
HTTP API is in docs/serving.md.
"""
import argparse
import sys
from typing import Optional, Sequence


def parse_task(text: str):
    name, sep, path = text.partition('=')
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(
            f'{text!r}: write a task as NAME=PROMPT_FILE.')
    return name, path


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from lpt_mmpretrain.serving.app import DEFAULTS
    parser = argparse.ArgumentParser(
        description='Serve LPT tasks over HTTP in mixed batches (Ray Serve).')
    parser.add_argument('config', help='config file of the backbone')
    parser.add_argument(
        '--tasks',
        nargs='+',
        type=parse_task,
        required=True,
        metavar='NAME=PROMPT_FILE',
        help='tasks served from the start (more: POST /v1/tasks)')
    parser.add_argument(
        '--address',
        help='a running Ray cluster (default: start a local Ray instance)')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument(
        '--max-batch-size', type=int, default=DEFAULTS['max_batch_size'])
    parser.add_argument(
        '--batch-wait-timeout-s',
        type=float,
        default=DEFAULTS['batch_wait_timeout_s'])
    parser.add_argument(
        '--max-image-bytes', type=int, default=DEFAULTS['max_image_bytes'])
    parser.add_argument(
        '--max-image-pixels', type=int, default=DEFAULTS['max_image_pixels'])
    parser.add_argument(
        '--num-cpus',
        type=int,
        default=1,
        help='CPUs of the local Ray instance (default: 1)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument(
        '--threads', type=int, help='torch threads of the replica')
    args = parser.parse_args(argv)
    for opt in ('max_batch_size', 'max_image_bytes', 'max_image_pixels',
                'num_cpus', 'port'):
        if getattr(args, opt) < 1:
            parser.error(f'--{opt.replace("_", "-")} must be >= 1.')
    if args.batch_wait_timeout_s < 0:
        parser.error('--batch-wait-timeout-s must be >= 0.')
    names = [name for name, _ in args.tasks]
    if len(set(names)) != len(names):
        parser.error(f'--tasks names a task twice: {names}.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    from lpt_mmpretrain.serving.launch import serve_forever
    try:
        serve_forever(
            args.config,
            dict(args.tasks),
            address=args.address,
            host=args.host,
            port=args.port,
            num_cpus=args.num_cpus,
            num_gpus=1 if args.device.startswith('cuda') else 0,
            max_batch_size=args.max_batch_size,
            batch_wait_timeout_s=args.batch_wait_timeout_s,
            max_image_bytes=args.max_image_bytes,
            max_image_pixels=args.max_image_pixels,
            device=args.device,
            threads=args.threads)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        sys.exit(f'serve.py: {err}')


if __name__ == '__main__':
    main()
