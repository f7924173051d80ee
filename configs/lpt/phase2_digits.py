# LPT phase 2 on DigitsLT, sized for CPUs: prompt pool over the last 3 of the
# tiny ViT's 6 blocks, starting from phase1_digits.py's work dir.
_base_ = ['./phase1_digits.py']

model = dict(
    type='LPTClassifier',
    neck=dict(type='PromptPoolNeck', pool_size=10, prompt_length=5, top_k=2),
    share_blocks=3,
    match_loss_weight=0.5,
    shared_prefix=True,
    phase1_checkpoint='work_dirs/phase1_digits',
)
