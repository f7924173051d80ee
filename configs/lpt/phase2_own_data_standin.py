# LPT phase 2 on your own images, sized for a CPU (see
# phase1_own_data_standin.py), from phase 1's work dir.
_base_ = ['./phase1_own_data_standin.py']

model = dict(
    neck=dict(type='PromptPoolNeck', pool_size=10, prompt_length=5, top_k=2),
    share_blocks=3,
    phase1_checkpoint='work_dirs/phase1_own_data_standin',
)
