"""Export a checkpoint of digits_pretrain_vit_tiny.py as the shipped stand-in.

Usage::

    python tools/model_converters/export_standin.py CHECKPOINT [--name NAME]

Writes ``lpt_mmpretrain/checkpoints/standins/<NAME>.pth`` (the weights) and
``<NAME>.json`` (their sha256, config and command), which configs load as
``standin://<NAME>``. This rewrites the checksum: other weights give other
results than the README's.
"""
import argparse
import json
from typing import List, Optional

from lpt_mmpretrain.checkpoints.standin import STANDIN_DIR, export_standin


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--name', default='digits_vit_tiny')
    parser.add_argument('--dir', default=STANDIN_DIR)
    args = parser.parse_args(argv)
    record = export_standin(args.checkpoint, args.name, args.dir)
    print(json.dumps(record, indent=2))
    return record


if __name__ == '__main__':
    main()
