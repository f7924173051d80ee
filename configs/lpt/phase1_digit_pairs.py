# LPT phase 1 on DigitPairsLT, the demo's task: 100 long-tailed classes of
# two-digit numbers ('00'..'99', 40 down to 2 training pairs per class, class
# order shuffled), the frozen tiny-ViT stand-in pretrained on single digits
# (another label space: 10 digits). Everything else as phase1_digits.py.
_base_ = ['./phase1_digits.py']

pairs = dict(
    type='DigitPairsLT',
    max_per_class=40,
    imbalance_ratio=20,
    img_size={{_base_.img_size}},
    pipeline={{_base_.pipeline}})
train_dataloader = dict(dataset=dict(_delete_=True, split='train', **pairs))
# Validation (every recipe choice, docs/demo_study.md) on the val split, its
# own digit images; the test split is for the final table only.
val_dataloader = dict(dataset=dict(_delete_=True, split='val', **pairs))
test_dataloader = dict(dataset=dict(_delete_=True, split='test', **pairs))
# 1,228 training pairs: many > 20 (22 classes), medium 6..20 (41), few < 6
# (37), the papers' 100 / 20 thresholds scaled down.
val_evaluator = dict(type='LongTailAccuracy', many_shot_thr=20, few_shot_thr=6)
test_evaluator = val_evaluator

model = dict(head=dict(num_classes=100))

base_lr = 0.05  # phase1_digits.py's optimiser, a shorter schedule
max_epochs = 10
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / base_lr,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=2))
