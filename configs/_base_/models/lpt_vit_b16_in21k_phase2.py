# LPT phase-2 model: the phase-1 model plus the prompt pool (20 entries of 10
# tokens for blocks 6..11, top-2 averaged) and the matching term. The shared
# prompt and head are loaded from `phase1_checkpoint` (set by each phase-2
# config) and the shared prompt is frozen.
_base_ = ['./lpt_vit_b16_in21k.py']

# The paper's values are the defaults of PromptPoolNeck (pool_size=20,
# prompt_length=10, top_k=2) and LPTClassifier (share_blocks=6,
# match_loss_weight=0.5, shared_prefix=True): adding the neck makes phase 2.
model = dict(neck=dict(type='PromptPoolNeck'))
