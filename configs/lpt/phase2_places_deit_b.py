# LPT phase 2 on Places-LT with DeiT-B/16 (IN-1k): prompt pool over the last
# 6 of the 12 blocks on top of phase1_places_deit_b.py's shared prompt.
_base_ = ['./phase1_places_deit_b.py']

model = dict(
    type='LPTClassifier',
    neck=dict(type='PromptPoolNeck', pool_size=20, prompt_length=10, top_k=2),
    share_blocks=6,
    match_loss_weight=0.5,
    shared_prefix=True,
    phase1_checkpoint='work_dirs/phase1_places_deit_b')
