"""Test a model: MMPretrain's tools/test.py, plus CPU distributed testing.

Arguments are exactly MMPretrain's (`python tools/test.py -h`: `--tta`,
`--show-dir`, `--out`, ...). CHECKPOINT may be a full or a prompt-only file
(`epoch_N_prompts.pth`): the model loads either (see the README). The
metrics are printed one `name: value` per line at the end.
"""
import mmengine
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmpretrain.utils import register_all_modules

import lpt_mmpretrain  # noqa: F401  (first: registers, quiets mmcv-lite)
from lpt_mmpretrain.datasets import check_dataset_paths
from lpt_mmpretrain.engine import compat
from lpt_mmpretrain.engine.compat import mmpretrain_tools
from lpt_mmpretrain.engine.compat.dist import (setup_cpu_distributed,
                                               teardown_distributed)

tool = mmpretrain_tools.load_mmpretrain_tool('test')
parse_args = tool.parse_args


def merge_args(cfg: Config, args) -> Config:
    """MMPretrain's ``merge_args``, then the host fixes."""
    return mmpretrain_tools.adapt_cfg_to_host(tool.merge_args(cfg, args))


def main():
    compat.install()
    args = parse_args()
    if args.out is None and args.out_item is not None:
        raise SystemExit('Please use `--out` argument to specify the path of '
                         'the output file before using `--out-item`.')
    if args.out is not None and args.out_item in ['pred', None] \
            and not args.out.endswith(('.pkl', '.pickle')):
        raise SystemExit(f'--out {args.out}: the predictions are dumped as a '
                         'pickle file, give a path ending with .pkl.')
    cfg = merge_args(Config.fromfile(args.config), args)
    loader = cfg.get('test_dataloader') or {}
    check_dataset_paths(loader.get('dataset'), 'test_dataloader.dataset')

    register_all_modules(init_default_scope=False)
    setup_cpu_distributed(cfg, args.launcher)
    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg else RUNNERS.build(cfg))
    if args.out and args.out_item in ['pred', None]:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    metrics = runner.test()

    if is_main_process():
        if args.out and args.out_item == 'metrics':
            mmengine.dump(metrics, args.out)
        for name, value in metrics.items():
            print(f'{name}: {value}', flush=True)
    teardown_distributed()


if __name__ == '__main__':
    main()
