"""Train a model: MMPretrain's tools/train.py, plus CPU distributed and AMP.

Arguments are exactly MMPretrain's (`python tools/train.py -h`); see
lpt_mmpretrain/engine/compat/mmpretrain_tools.py for what is added.
"""
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmpretrain.utils import register_all_modules

import lpt_mmpretrain  # noqa: F401  (first: registers, quiets mmcv-lite)
from lpt_mmpretrain.engine import compat
from lpt_mmpretrain.engine.compat import mmpretrain_tools
from lpt_mmpretrain.engine.compat.dist import (setup_cpu_distributed,
                                               teardown_distributed)

tool = mmpretrain_tools.load_mmpretrain_tool('train')

parse_args = tool.parse_args


def merge_args(cfg: Config, args) -> Config:
    """MMPretrain's ``merge_args``, then the host fixes."""
    if args.auto_scale_lr and 'base_batch_size' not in cfg.get(
            'auto_scale_lr', {}):
        raise ValueError(
            '--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=N)` '
            'in the config, N being the total batch size the learning rate '
            'was set for.')
    return mmpretrain_tools.adapt_cfg_to_host(tool.merge_args(cfg, args))


def main():
    compat.install()
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)

    # MMPretrain's modules for the config's `default_scope`, then, without a
    # GPU, the CPU (gloo) process group
    register_all_modules(init_default_scope=False)
    setup_cpu_distributed(cfg, args.launcher)
    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()
