# Runtime settings shared by every lpt_mmpretrain config.
default_scope = 'mmpretrain'
# lpt_mmpretrain registers the components; its engine.compat.installed makes
# every MMEngine loader of the process (also in MMPretrain's own tools,
# get_model, the inferencers) read checkpoints with weights_only=True, where
# the installed MMEngine does not (lpt_mmpretrain/engine/compat/).
custom_imports = dict(
    imports=['lpt_mmpretrain', 'lpt_mmpretrain.engine.compat.installed'],
    allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # `atomic_local` writes to a temporary file and renames it, so a failed
    # write never replaces the last good checkpoint with a truncated one.
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # SIGTERM / SIGUSR1 (Slurm preemption, time limit): save iter_N.pth after
    # the iteration in progress, exit 75; `--resume` continues mid-epoch.
    # `interval=N` adds a checkpoint every N iterations (docs/data_loading.md).
    # Epoch-based runs need train_cfg type='ResumableEpochBasedTrainLoop'
    # (the schedules' default), which stops and resumes mid-epoch.
    preemption=dict(type='PreemptionCheckpointHook'),
)

custom_hooks = [
    # Class counts of the training set for
    # AsymmetricGCLLoss(cls_num_list=None).
    dict(type='ClassCountsHook'),
    # Weight of the instance-balanced stream, max(0, 0.5 * (E - e) / E).
    dict(type='DualStreamScheduleHook'),
    # Random state as a function of (seed, step, rank): exact resume.
    dict(type='IterSeedHook'),
    # Prompt-only checkpoints (prompts, pool, keys, head) next to full ones.
    # Models whose backbone trains (e.g. ResNet baselines) drop this hook.
    dict(type='PromptCheckpointHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # On machines without a GPU our tools switch nccl to gloo.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)

# Test-time augmentation (MMPretrain's `tools/test.py --tta`): the model
# averages the softmax scores of the views that the data set's
# `tta_pipeline` makes (LIFT's five crops, see FiveCrop). A config without a
# `tta_pipeline` gets MMPretrain's default, the image and its mirror.
tta_model = dict(type='AverageClsScoreTTA')
