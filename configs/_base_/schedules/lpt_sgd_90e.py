# The official LPT phase-2 recipe (LPT_SPEC.md, "Phase recipes"): SGD with
# momentum 0.9, lr = 0.02 * batch / 256 (batch = images per stream, 256),
# weight decay 0.01, 90 epochs, 1 warm-up epoch from 1e-6, cosine decay.
base_lr = 0.02
warmup_start_lr = 1e-6
max_epochs = 90

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=base_lr, momentum=0.9, weight_decay=0.01))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=warmup_start_lr / base_lr,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=0.,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()

# Each iteration holds a class-balanced and an instance-balanced batch of 256:
# 512 images. `--auto-scale-lr` scales the lr to the real total batch.
auto_scale_lr = dict(base_batch_size=512)
