# Baseline on DigitPairsLT (the demo's task): a linear probe of the frozen
# tiny ViT, as baseline_digits_linear_probe.py (cross-entropy, plain
# sampling), with phase1_digit_pairs.py's data, optimiser and epochs.
_base_ = ['./phase1_digit_pairs.py']

model = dict(
    backbone=dict(prompt_length=0),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=100,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)
# Plain sampling: every image once per epoch, in random order.
train_dataloader = dict(
    batch_size=32,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    batch_sampler=None)
custom_hooks = [dict(type='IterSeedHook')]
