"""Top-1 and time per image of a checkpoint with and without TTA.

    python tools/analysis_tools/tta_benchmark.py CONFIG CHECKPOINT \
        [--repeats 3] [--cfg-options ...]

Runs the config's test split through the test pipeline and through its
``tta_pipeline`` (averaged by ``tta_model``, as ``tools/test.py --tta``
does), in this process, and prints top-1 and the model's seconds per image
(median and range over ``--repeats`` passes; data loading excluded).
"""
import argparse
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose, default_collate
from mmengine.registry import init_default_scope


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def batches(dataset, pipeline, batch_size):
    data = [pipeline(dataset.get_data_info(i)) for i in range(len(dataset))]
    return [
        default_collate(data[i:i + batch_size])
        for i in range(0, len(data), batch_size)
    ]


def run(model, data, repeats):
    times, correct, total = [], 0, 0
    for _ in range(repeats):
        correct = total = 0
        start = time.perf_counter()
        with torch.no_grad():
            for batch in data:
                samples = model.test_step(batch)
                correct += sum(
                    int(s.pred_label.item() == s.gt_label.item())
                    for s in samples)
                total += len(samples)
        times.append((time.perf_counter() - start) / total)
    return 100 * correct / total, sorted(times)


def main():
    args = parse_args()
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

    import lpt_mmpretrain  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.eval()
    tta = MODELS.build(dict(**cfg.tta_model, module=model)).eval()
    dataset_cfg = cfg.test_dataloader.dataset
    dataset = DATASETS.build({**dataset_cfg, 'pipeline': []})
    print(f'{args.config}, {len(dataset)} test images, '
          f'torch threads {torch.get_num_threads()}')
    for name, net, pipeline in (('plain', model, dataset_cfg.pipeline),
                                ('tta', tta, cfg.tta_pipeline)):
        pipeline = Compose([TRANSFORMS.build(t) for t in pipeline])
        top1, times = run(net, batches(dataset, pipeline, args.batch_size),
                          args.repeats)
        mid = times[len(times) // 2]
        print(f'{name}: top-1 {top1:.2f}, {1e3 * mid:.3f} ms/image '
              f'(range {1e3 * times[0]:.3f} .. {1e3 * times[-1]:.3f}, '
              f'{args.repeats} passes)')


if __name__ == '__main__':
    main()
