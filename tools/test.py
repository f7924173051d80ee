# Adapted from MMPretrain 1.2.0 tools/test.py (Apache-2.0).
import argparse
import os
import os.path as osp
from copy import deepcopy

import mmengine
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.utils import register_all_modules

from lpt_mmpretrain.engine.dist import (setup_cpu_distributed,
                                        teardown_distributed)
from lpt_mmpretrain.engine.prompt_checkpoint import (is_prompt_checkpoint,
                                                     load_prompt_checkpoint)


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMPreTrain test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file: a full one, or a prompt-only one '
        '(epoch_N_prompts.pth), which is combined with the pretrained '
        'backbone named in the config (model.backbone.init_cfg)')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        help='the file to output results: the predictions (a pickle file '
        'with one dict per test sample, holding e.g. `pred_score`, '
        '`pred_label` and `gt_label`) or, with `--out-item metrics`, the '
        'metrics.')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='To output whether metrics or predictions. '
        'Defaults to output predictions.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision test')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='whether to disable the pin_memory option in dataloaders.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch`
    # will pass the `--local-rank` parameter to `tools/train.py` instead
    # of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Merge CLI arguments to config."""
    cfg.launcher = args.launcher

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        # update configs according to CLI args if args.work_dir is not None
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        # use config filename as default work_dir if cfg.work_dir is None
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint

    # enable automatic-mixed-precision test
    if args.amp:
        cfg.test_cfg.fp16 = True

    # ----------------- Default dataloader args -----------------
    default_dataloader_cfg = ConfigDict(
        pin_memory=True,
        collate_fn=dict(type='default_collate'),
    )

    def set_default_dataloader_cfg(cfg, field):
        if cfg.get(field, None) is None:
            return
        dataloader_cfg = deepcopy(default_dataloader_cfg)
        dataloader_cfg.update(cfg[field])
        cfg[field] = dataloader_cfg
        if args.no_pin_memory:
            cfg[field]['pin_memory'] = False

    set_default_dataloader_cfg(cfg, 'test_dataloader')

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # torch's DataLoader refuses persistent_workers=True without workers.
    test_dataloader = cfg.get('test_dataloader', None)
    if test_dataloader is not None \
            and test_dataloader.get('num_workers', 0) == 0:
        test_dataloader['persistent_workers'] = False

    return cfg


def main():
    args = parse_args()

    if args.out is None and args.out_item is not None:
        raise ValueError('Please use `--out` argument to specify the '
                         'path of the output file before using `--out-item`.')
    if args.out is not None and args.out_item in ['pred', None] \
            and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {args.out}: the predictions are dumped as a '
                         'pickle file, give a path ending with .pkl.')

    # load config
    cfg = Config.fromfile(args.config)

    # merge cli arguments to config
    cfg = merge_args(cfg, args)

    # register MMPretrain's modules (the config's `default_scope` selects
    # them), then, without a GPU, start the CPU (gloo) process group
    register_all_modules(init_default_scope=False)
    setup_cpu_distributed(cfg, args.launcher)

    # A prompt-only checkpoint holds what LPT training changed; the frozen
    # backbone comes from the config's pretrained checkpoint.
    prompt_only = is_prompt_checkpoint(
        _load_checkpoint(args.checkpoint, map_location='cpu'))
    if prompt_only:
        backbone_init = cfg.model.backbone.get('init_cfg')
        if not (isinstance(backbone_init, dict)
                and backbone_init.get('type') == 'Pretrained'):
            raise ValueError(
                f'{args.checkpoint} is a prompt-only checkpoint: the config '
                'must name the pretrained backbone in '
                'model.backbone.init_cfg=dict(type="Pretrained", '
                'checkpoint=...).')
        cfg.load_from = None

    # build the runner from config
    if 'runner_type' not in cfg:
        # build the default runner
        runner = Runner.from_cfg(cfg)
    else:
        # build customized runner from the registry
        # if 'runner_type' is set in the cfg
        runner = RUNNERS.build(cfg)

    if prompt_only:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.backbone.init_weights()
        load_prompt_checkpoint(model, args.checkpoint)
        runner.logger.info(
            f'Loaded the prompt-only checkpoint {args.checkpoint} on the '
            f'pretrained backbone {backbone_init["checkpoint"]}.')

    if args.out and args.out_item in ['pred', None]:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))

    # start testing
    metrics = runner.test()

    if is_main_process():
        if args.out and args.out_item == 'metrics':
            mmengine.dump(metrics, args.out)
        # one `name: value` line per metric, after the runner's log
        for name, value in metrics.items():
            print(f'{name}: {value}', flush=True)

    teardown_distributed()


if __name__ == '__main__':
    main()
