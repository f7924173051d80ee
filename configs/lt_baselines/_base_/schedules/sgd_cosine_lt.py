# SGD for the ResNet baselines: lr 0.1 for 256 images per stream (512 per
# iteration with both streams), momentum 0.9, 5 warm-up epochs, cosine decay.
# Common CNN long-tail settings, not tuned for these runs.
base_lr = 0.1
max_epochs = 90
warmup_epochs = 5

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=5e-4),
    # no weight decay on BatchNorm
    paramwise_cfg=dict(norm_decay_mult=0.))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()

# The lr is set for 256 images per stream = 512 images per iteration.
auto_scale_lr = dict(base_batch_size=512)
