# The LPT runtime without PromptCheckpointHook: these baselines train their
# backbone, so a prompt-only file (prompts, pool, keys, head) would drop the
# trained weights. The full checkpoints of CheckpointHook hold everything.
_base_ = ['../../_base_/default_runtime.py']

custom_hooks = [
    # Class counts of the training set for A-GCL (cls_num_list=None).
    dict(type='ClassCountsHook'),
    # Weight of the instance-balanced stream, max(0, 0.5 * (E - e) / E).
    dict(type='DualStreamScheduleHook'),
    # Random state as a function of (seed, step, rank): exact resume.
    dict(type='IterSeedHook'),
]
