# LPT phase-2 model on CLIP ViT-B/16: the CLIP phase-1 model plus the prompt
# pool (20 entries of 10 tokens for blocks 6..11, top-2 averaged) and the
# matching term, as lpt_vit_b16_in21k_phase2.py adds them to the IN-21k
# model. The shared prompt and head come from `phase1_checkpoint`.
_base_ = ['./lpt_clip_vit_b16.py']

# The paper's pool: the defaults of PromptPoolNeck and LPTClassifier.
model = dict(neck=dict(type='PromptPoolNeck'))
