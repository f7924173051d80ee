"""What a user reads when a checkpoint does not fit: one table.

The likely fixes of the backbone's check (:mod:`.pretrained`) and the
classifier's (:mod:`.classifier`), and the problems of a prompt-only file
(:mod:`.prompt_only`) and of the stand-in (:mod:`.standin`). The code
picks a row by name and fills in its fields: :func:`message`.
"""
__all__ = ['MESSAGES', 'message']

MESSAGES = {
    # the pretrained ViT of the backbone
    'not_vit':
    'Likely fix: this is not a ViT checkpoint (MMPretrain '
    'VisionTransformer, LPT or timm ViT layout), or init_cfg prefix is wrong.',
    'prompt_length':
    'Likely fix: the model has prompt_length={prompt_length};'
    " set prompt_length and arch to the checkpoint's.",
    'pos_embed':
    'Likely fix: the arch (embed_dims) must match the checkpoint '
    '({problem}); a ViT pos_embed is (1, 1 + h * w, C) with a square grid.',
    'patch_embed':
    'Likely fix: patch size / in_channels: the checkpoint uses '
    'patch_size={patch_size}, in_channels={in_channels}.',
    'arch_options':
    "Likely fix: match the checkpoint's architecture options "
    '(layer_scale_init_value for *gamma*, pre_norm=True for pre_norm.*, arch '
    'num_layers for extra layers).',
    'num_layers':
    'Likely fix: wrong arch: the checkpoint has {checkpoint} '
    'layers, the model {model}.',
    'qkv_bias':
    'Likely fix: the checkpoint has no qkv bias: set '
    'qkv_bias=False.',
    'layer_scale':
    'Likely fix: the checkpoint has no layer scale: set '
    'layer_scale_init_value=0.',
    'pre_norm':
    'Likely fix: the checkpoint has no pre-norm: set '
    'pre_norm=False.',
    'final_norm':
    'Likely fix: the checkpoint has no final norm on the tokens '
    '(e.g. a timm average-pooling ViT); LPT needs a CLS-token ViT.',
    'vit_arch':
    'Likely fix: wrong arch (embed_dims / feedforward_channels / '
    'num_heads) for this checkpoint, or not a ViT checkpoint.',
    # the trained tensors of the classifier
    'phase2_file':
    'It is a phase-2 checkpoint (it has a prompt pool) but the '
    'model is a phase-1 one: use the phase-2 config.',
    'phase1_file':
    'It is a phase-1 checkpoint (no prompt pool): test it with '
    'the phase-1 config; phase 2 starts from it through '
    '`model.phase1_checkpoint`.',
    'neck':
    'Likely fix: the neck (pool_size, prompt_length) and share_blocks '
    "must match the checkpoint's config.",
    'not_lpt':
    'It is not an LPT checkpoint (no shared prompt, which phase 1 '
    'trains); a plain pretrained ViT goes into model.backbone.init_cfg '
    'instead.',
    'prompt_shape':
    'Likely fix: prompt_length x embed_dims of the backbone '
    "must match the checkpoint's.",
    'num_classes':
    'The checkpoint was trained for {checkpoint} classes, the '
    'model has {model}: set model.head.num_classes (and the data set) to the '
    "checkpoint's.",
    'head':
    'Likely fix: num_classes / in_channels of the head must match the '
    "checkpoint's.",
    'not_phase1':
    'It is not an LPT phase-1 checkpoint for this model (phase 1'
    ' trains LPTVisionTransformer.prompt and the head).',
    'config':
    'Likely fix: use the config the checkpoint was trained with.',
    # the phase-1 checkpoint of phase 2
    'no_last_checkpoint':
    '{path} is a directory without a `last_checkpoint` '
    'file: point `phase1_checkpoint` at the phase-1 checkpoint file (e.g. '
    'work_dirs/phase1_xxx/epoch_90.pth) or at a finished phase-1 work dir.',
    'phase1_missing':
    'Phase-1 checkpoint {path} does not exist. Train phase '
    '1 first (tools/train.py configs/lpt/phase1_xxx.py) or set '
    '`model.phase1_checkpoint` to its checkpoint.',
    'phase1_without_neck':
    'model.phase1_checkpoint is set but the model has '
    'no neck: phase 1 (no PromptPoolNeck) starts from the pretrained backbone '
    'alone; add the neck for phase 2 or remove phase1_checkpoint.',
    'phase2_without_phase1':
    'LPT phase 2 starts from a phase-1 checkpoint, '
    'but `model.phase1_checkpoint` is not set. Train phase 1 first and set it '
    'to the phase-1 checkpoint or work dir (e.g. --cfg-options '
    'model.phase1_checkpoint=work_dirs/phase1_xxx), or set '
    '`model.allow_no_phase1=True` to train phase 2 from scratch.',
    # prompt-only files (the frozen backbone they were trained on)
    'no_shared_prompt':
    'The checkpoint lacks the shared prompt `{key}` that '
    'LPT trains: it is not an LPT checkpoint. A plain pretrained ViT goes '
    'into model.backbone.init_cfg.',
    'truncated':
    "The checkpoint holds {present} of the backbone's {frozen} "
    'frozen tensors, e.g. it lacks `{key}`: it is truncated or for another '
    'architecture.',
    'no_backbone':
    'The checkpoint holds no backbone weights and no '
    'fingerprint of a backbone: it is neither a full LPT checkpoint nor a '
    'prompt-only file written by lpt_mmpretrain >= 0.2 (older prompt-only '
    'files: re-export them from the full checkpoint with '
    'tools/model_converters/extract_prompts.py).',
    'prompt_only_with_backbone':
    'The checkpoint is a prompt-only file but '
    'also holds backbone weights (`{key}`): it is corrupt; re-save it.',
    'no_pretrained':
    'A prompt-only checkpoint needs the frozen backbone it '
    'was trained on (recorded: {recorded}), but the model names no pretrained '
    "checkpoint: set model.backbone.init_cfg=dict(type='Pretrained', "
    'checkpoint=...).',
    'save_needs_pretrained':
    'A prompt-only checkpoint needs the frozen '
    'backbone to come from a pretrained checkpoint, but '
    "model.backbone.init_cfg names none: set init_cfg=dict(type='Pretrained',"
    ' checkpoint=...).',
    'pretrained_missing':
    'A prompt-only checkpoint was trained on the '
    'backbone {recorded} (fingerprint {fingerprint}...); the model\'s '
    'pretrained checkpoint {source} does not exist. Make or download it (see '
    'the README), or load the full checkpoint instead.',
    'other_backbone':
    'The prompt-only checkpoint was trained on another '
    'backbone: it records {recorded} with fingerprint {expected}, but {source}'
    ' has fingerprint {actual}. Use the backbone it was trained on '
    '(model.backbone.init_cfg.checkpoint), or its full checkpoint.',
    'export_other_backbone':
    'The backbone of {checkpoint} (fingerprint '
    '{trained_on}) is not the pretrained {source} of the config (fingerprint '
    '{actual}): set model.backbone.init_cfg.checkpoint to the backbone it was '
    'trained on.',
    # CLIP image towers
    'clip_unknown_key':
    "Key '{key}' (shape {shape}) does not fit a CLIP ViT "
    'image tower. Expected class_embedding, positional_embedding, conv1, '
    'ln_pre, transformer.resblocks.<i>.{{ln_1, attn.in_proj_*, attn.out_proj,'
    ' ln_2, mlp.c_fc, mlp.c_proj}}, ln_post and proj, optionally under '
    'visual. {hint}',
    'clip_missing_key':
    "Key '{key}' of a CLIP ViT image tower is missing "
    '(first keys found: {found}). {hint}',
    'clip_from_hf':
    'This is a Hugging Face transformers CLIP model: use the '
    "open_clip file of the same model ('open_clip_pytorch_model.bin' / "
    "'open_clip_model.safetensors').",
    'clip_from_timm':
    'This is a timm ViT: convert it with '
    'tools/model_converters/timm_to_mmpretrain.py.',
    'clip_resnet':
    'This is a ResNet CLIP; only ViT image towers convert.',
    'clip_text_only':
    'This is a text tower without an image tower: pass the '
    'whole CLIP checkpoint.',
    'clip_other':
    'It is not a CLIP ViT image tower.',
    # the shipped stand-in
    'standin_missing':
    '{uri}: the stand-in file {path} is missing. {remedy}',
    'standin_changed':
    '{uri}: {path} has sha256 {actual}, but {record} '
    'records {expected}: the weights are not the ones the results were made '
    'with (a damaged or replaced file). {remedy}',
    'standin_remedy':
    'Restore the shipped file with `git checkout -- {pth} '
    '{json}`, or retrain it: `.venv/bin/python tools/train.py {config}` then '
    '`.venv/bin/python tools/model_converters/export_standin.py '
    "work_dirs/digits_pretrain_vit_tiny/epoch_30.pth` (other weights, so "
    "other results than the README's).",
}


def message(row: str, **fields) -> str:
    """The row ``row`` of :data:`MESSAGES` with its fields filled in."""
    return MESSAGES[row].format(**fields)
