"""Write the prompt-only file of a full LPT checkpoint.

    python tools/model_converters/extract_prompts.py CONFIG FULL.pth [OUT.pth]

OUT defaults to FULL_prompts.pth. The full checkpoint's backbone must be the
config's pretrained backbone (checked by fingerprint).
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction
from mmpretrain.registry import MODELS
from mmpretrain.utils import register_all_modules

from lpt_mmpretrain.checkpoints import (export_prompt_checkpoint,
                                        prompt_only_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', nargs='?')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=True)
    out = args.out or prompt_only_path(args.checkpoint)
    export_prompt_checkpoint(MODELS.build(cfg.model), args.checkpoint, out)
    print(f'Wrote {out} ({osp.getsize(out) / 2**20:.2f} MiB).')


if __name__ == '__main__':
    main()
