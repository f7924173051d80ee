# Non-prompt long-tail baseline on iNaturalist 2018: a Swin-T trained end to
# end (from scratch) with LPT's cosine head, A-GCL on both sampling streams,
# DualClassBalancedSampler and LongTailAccuracy. A baseline: the schedule is
# not tuned.
_base_ = [
    './_base_/models/swin_tiny_cosine_agcl.py',
    '../_base_/datasets/inat2018.py',
    './_base_/schedules/adamw_cosine_lt.py',
    './_base_/lt_baseline_runtime.py',
]

model = dict(head=dict(num_classes=8142))
