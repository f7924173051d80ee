# LPT phase 2 on DigitPairsLT (the demo's task): the pool of phase2_digits.py
# (10 prompts over the last 3 of 6 blocks, top-2) on phase1_digit_pairs.py,
# starting from its work dir.
_base_ = ['./phase1_digit_pairs.py']

# The neck makes the model phase 2; match_loss_weight=0.5 and
# shared_prefix=True are LPTClassifier's defaults.
model = dict(
    neck=dict(type='PromptPoolNeck', pool_size=10, prompt_length=5, top_k=2),
    share_blocks=3,
    phase1_checkpoint='work_dirs/phase1_digit_pairs',
)
