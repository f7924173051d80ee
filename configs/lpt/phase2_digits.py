# LPT phase 2 on DigitsLT, sized for CPUs: prompt pool over the last 3 of the
# tiny ViT's 6 blocks, starting from phase1_digits.py's work dir.
_base_ = ['./phase1_digits.py']

# The neck makes the model phase 2; match_loss_weight=0.5 and
# shared_prefix=True are LPTClassifier's defaults.
model = dict(
    neck=dict(type='PromptPoolNeck', pool_size=10, prompt_length=5, top_k=2),
    share_blocks=3,
    phase1_checkpoint='work_dirs/phase1_digits',
)
