# Baseline for the DigitsLT demo: a linear probe. The same frozen tiny ViT as
# phase1_digits.py (LPTVisionTransformer with prompt_length=0: no prompts,
# every weight frozen, eval mode), a plain linear classifier trained with
# cross-entropy on the same long-tailed training split with plain
# (instance-balanced) sampling, and the same optimiser, schedule and epochs
# as phase 1 (inherited from it). No long-tail technique: what LPT is
# compared with.
_base_ = ['./phase1_digits.py']

model = dict(
    backbone=dict(prompt_length=0),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)

# Plain sampling: every image once per epoch, in random order.
train_dataloader = dict(
    batch_size=32,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    batch_sampler=None)

# No class counts, no second stream, no prompts to save: only the exact-resume
# seeding of the LPT runs.
custom_hooks = [dict(type='IterSeedHook')]
