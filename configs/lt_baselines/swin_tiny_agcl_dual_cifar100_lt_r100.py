# Non-prompt long-tail baseline on CIFAR-100-LT (rho = 100): a Swin-T trained
# end to end (from scratch) with LPT's cosine head, A-GCL on both sampling
# streams, DualClassBalancedSampler and LongTailAccuracy. Same data pipeline
# as the LPT configs, so only the model differs. A baseline: the schedule is
# not tuned.
_base_ = [
    './_base_/models/swin_tiny_cosine_agcl.py',
    '../_base_/datasets/cifar100_lt_r100.py',
    './_base_/schedules/adamw_cosine_lt.py',
    './_base_/lt_baseline_runtime.py',
]

model = dict(head=dict(num_classes=100))
