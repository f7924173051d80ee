import os.path as osp
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..backbones.lpt_vision_transformer import FINGERPRINT_KEY, SOURCE_KEY
from ..utils.state_dict_check import check_state_dict
from .model_index_mixin import ModelIndexMixin

__all__ = ['LPTClassifier', 'resolve_checkpoint_path']


def resolve_checkpoint_path(path: str) -> str:
    """Turn a work dir into the checkpoint its ``last_checkpoint`` names.

    Args:
        path (str): A checkpoint file, or a work dir written by MMEngine's
            ``CheckpointHook``.

    Returns:
        str: The checkpoint file.
    """
    if osp.isdir(path):
        pointer = osp.join(path, 'last_checkpoint')
        if not osp.isfile(pointer):
            raise FileNotFoundError(
                f'{path} is a directory without a `last_checkpoint` file: '
                'point `phase1_checkpoint` at the phase-1 checkpoint file '
                '(e.g. work_dirs/phase1_xxx/epoch_90.pth) or at a finished '
                'phase-1 work dir.')
        with open(pointer) as f:
            path = f.read().strip()
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(
            f'Phase-1 checkpoint {path} does not exist. Train phase 1 first '
            '(tools/train.py configs/lpt/phase1_xxx.py) or set '
            '`model.phase1_checkpoint` to its checkpoint.')
    return path


def is_trained_key(key: str) -> bool:
    """Whether an LPT state-dict key is trained (not the frozen ViT).

    Every key outside the backbone is (prompt pool, keys, head), and the
    backbone's shared prompt. Prompt-only checkpoints hold exactly these.
    """
    return not key.startswith('backbone.') or key == 'backbone.prompt'


@MODELS.register_module()
class LPTClassifier(ModelIndexMixin, ImageClassifier):
    """LPT's classifier: frozen ViT with shared prompt, prompt pool, head.

    Without a neck it is the phase-1 model (``ImageClassifier``'s forward:
    the prompted backbone, then the head). With a :class:`PromptPoolNeck` it
    is the phase-2 model, whose forward pass, with ``k = share_blocks`` and
    ``L`` blocks, is:

    1. blocks ``[0, k)`` with the (frozen) shared prompt, once;
    2. the query: blocks ``[k, L)`` with the shared prompt, final norm, CLS,
       without gradient (it is the phase-1 model's feature);
    3. the neck selects and averages group prompts for each query and returns
       the matching term;
    4. the feature: blocks ``[k, L)`` from the same step-1 tokens with the
       shared and the group prompts, final norm, CLS; then the head.

    Steps 1 and 2 together are the phase-1 model's forward pass, and so is
    the prefix of the feature pass, so the prefix is shared. With
    ``shared_prefix=False`` the query and the feature are computed by two
    full passes, as the paper's code does (for tests and benchmarks).

    The loss is the head's loss plus ``loss_match = -match_loss_weight *``
    (the stream-weighted mean of the matching term, see
    :meth:`CosineClsHead.sample_weights`).

    Loading any state dict into the model (MMEngine's ``load_checkpoint``,
    the runner's ``load_from``, MMPretrain's ``get_model`` and Inferencer,
    ``load_state_dict``) checks it: every trained tensor (shared prompt,
    pool, keys, head) must be there with the model's shape and nothing else
    may be, or the load fails naming the key, the phase or the shape. A
    prompt-only file gets its frozen backbone from the backbone's pretrained
    checkpoint, verified by fingerprint (see :class:`LPTVisionTransformer`).

    Args:
        backbone (dict): Config of an :class:`LPTVisionTransformer`.
        neck (dict, optional): Config of a :class:`PromptPoolNeck` (phase
            2), or None (phase 1). Defaults to None.
        head (dict): Config of the head, usually a :class:`CosineClsHead`.
        share_blocks (int): Number of leading blocks that see the shared
            prompt only. Defaults to 6.
        match_loss_weight (float): Weight of the matching term.
            Defaults to 0.5.
        phase1_checkpoint (str, optional): The phase-1 checkpoint (full or
            prompt-only) or a phase-1 work dir; its shared prompt and head
            are loaded in :meth:`init_weights`. Defaults to None.
        allow_no_phase1 (bool): Allow ``phase1_checkpoint=None`` and train
            phase 2 from a random shared prompt and head (for experiments).
            Defaults to False.
        shared_prefix (bool): Compute blocks ``[0, share_blocks)`` once for
            the query and the feature. Defaults to True.
        pretrained (str, optional): As in :class:`ImageClassifier`.
            Defaults to None.
        train_cfg (dict, optional): As in :class:`ImageClassifier`.
            Defaults to None.
        data_preprocessor (dict, optional): As in :class:`ImageClassifier`.
            Defaults to None.
        init_cfg (dict, optional): Initialization config dict.
            Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 share_blocks: int = 6,
                 match_loss_weight: float = 0.5,
                 phase1_checkpoint: Optional[str] = None,
                 allow_no_phase1: bool = False,
                 shared_prefix: bool = True,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if neck is None and phase1_checkpoint is not None:
            raise ValueError(
                'model.phase1_checkpoint is set but the model has no neck: '
                'phase 1 (no PromptPoolNeck) starts from the pretrained '
                'backbone alone; add the neck for phase 2 or remove '
                'phase1_checkpoint.')
        if neck is not None and phase1_checkpoint is None \
                and not allow_no_phase1:
            raise ValueError(
                'LPT phase 2 starts from a phase-1 checkpoint, but '
                '`model.phase1_checkpoint` is not set. Train phase 1 first '
                'and set it to the phase-1 checkpoint or work dir (e.g. '
                "--cfg-options model.phase1_checkpoint=work_dirs/phase1_xxx), "
                'or set `model.allow_no_phase1=True` to train phase 2 from '
                'scratch.')
        super().__init__(backbone=backbone,
                         neck=neck,
                         head=head,
                         pretrained=pretrained,
                         train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)

        for name in ('embed', 'forward_blocks', 'forward_final'):
            if not hasattr(self.backbone, name):
                raise TypeError(
                    f'LPTClassifier needs a backbone with `{name}()` (an '
                    f'LPTVisionTransformer), got '
                    f'{type(self.backbone).__name__}.')
        self.share_blocks = share_blocks
        self.match_loss_weight = match_loss_weight
        self.phase1_checkpoint = phase1_checkpoint
        self.shared_prefix = shared_prefix
        self._register_load_state_dict_pre_hook(self._check_loaded)
        if not self.with_neck:
            return  # phase 1
        if not hasattr(self.neck, 'build_pool'):
            raise TypeError('LPTClassifier needs a PromptPoolNeck, got '
                            f'{type(self.neck).__name__}.')
        num_layers = self.backbone.num_layers
        if not 0 <= share_blocks < num_layers:
            raise ValueError(
                f'share_blocks={share_blocks} is outside the backbone\'s '
                f'block range [0, {num_layers}): at least the last block must '
                'receive group prompts.')
        self.neck.build_pool(self.backbone.embed_dims,
                             num_layers - share_blocks)
        # Phase 2 keeps the phase-1 shared prompt fixed.
        if getattr(self.backbone, 'prompt', None) is not None:
            self.backbone.prompt.requires_grad_(False)

    def init_weights(self) -> None:
        super().init_weights()
        if self.phase1_checkpoint is not None:
            self.load_phase1(self.phase1_checkpoint)

    def load_phase1(self, checkpoint: str) -> None:
        """Load the shared prompt and head of a phase-1 checkpoint.

        Args:
            checkpoint (str): A phase-1 checkpoint (full or prompt-only) or a
                phase-1 work dir.
        """
        filename = resolve_checkpoint_path(checkpoint)
        ckpt = _load_checkpoint(filename, map_location='cpu')
        state = ckpt.get('state_dict', ckpt)
        # Both the shared prompt and the head must come from phase 1.
        wanted = [
            k for k in self.state_dict()
            if k == 'backbone.prompt' or k.startswith('head.')
        ]
        check_state_dict(
            self.state_dict(),
            state,
            f'The phase-1 checkpoint {filename}',
            keys=wanted,
            hint=lambda key: self._hint(key, state, 'phase1'))
        with torch.no_grad():
            own = self.state_dict(keep_vars=True)
            for key in wanted:
                own[key].copy_(state[key])
        print_log(
            f'Loaded the shared prompt and head of phase 1 from {filename}.',
            logger='current')

    def _check_loaded(self, state_dict: dict, prefix: str, *args) -> None:
        """Load-state-dict pre-hook: the trained tensors must all fit.

        The frozen backbone tensors are the backbone's own business (it
        fills them in for a prompt-only file); everything else, trained or
        unknown, is checked here, so a phase-1 file in a phase-2 model, a
        head of another class count or a phase-2 file in a phase-1 model
        fail on every loading path instead of leaving random tensors.
        """
        loaded = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        own = self.state_dict()
        ignore = {f'backbone.{FINGERPRINT_KEY}', f'backbone.{SOURCE_KEY}'}
        check_state_dict(
            own,
            loaded,
            'The checkpoint',
            keys=[k for k in own if is_trained_key(k)],
            hint=lambda key: self._hint(key, loaded, 'load'),
            unexpected=[
                k for k in loaded if k not in own and k not in ignore
            ])

    def _hint(self, key: str, state: dict, purpose: str) -> str:
        """The likely fix when a checkpoint's ``key`` does not fit."""
        own = self.state_dict()
        if key.startswith('neck.') and key not in own:
            return ('It is a phase-2 checkpoint (it has a prompt pool) but '
                    'the model is a phase-1 one: use the phase-2 config.')
        if key.startswith('neck.') and key not in state:
            return ('It is a phase-1 checkpoint (no prompt pool): test it '
                    'with the phase-1 config; phase 2 starts from it through '
                    '`model.phase1_checkpoint`.')
        if key.startswith('neck.'):
            return ('Likely fix: the neck (pool_size, prompt_length) and '
                    'share_blocks must match the checkpoint\'s config.')
        if key == 'backbone.prompt':
            if key not in state:
                return ('It is not an LPT checkpoint (no shared prompt, which '
                        'phase 1 trains); a plain pretrained ViT goes into '
                        'model.backbone.init_cfg instead.')
            return ('Likely fix: prompt_length x embed_dims of the backbone '
                    'must match the checkpoint\'s.')
        if key.startswith('head.') and key in state and key in own:
            got, want = tuple(state[key].shape), tuple(own[key].shape)
            if got[1:] == want[1:]:
                return (f'The checkpoint was trained for {got[0]} classes, '
                        f'the model has {want[0]}: set model.head.num_classes'
                        ' (and the data set) to the checkpoint\'s.')
            return ('Likely fix: num_classes / in_channels of the head must '
                    'match the checkpoint\'s.')
        if key.startswith('head.') and purpose == 'phase1':
            return ('It is not an LPT phase-1 checkpoint for this model '
                    '(phase 1 trains LPTVisionTransformer.prompt and the '
                    'head).')
        return 'Likely fix: use the config the checkpoint was trained with.'

    def _backbone_trainable(self) -> bool:
        return any(p.requires_grad for p in self.backbone.parameters())

    def extract_lpt(
            self,
            inputs: torch.Tensor) -> Tuple[Tuple[torch.Tensor], torch.Tensor]:
        """The LPT forward pass up to the head.

        Args:
            inputs (Tensor): (B, 3, H, W) images.

        Returns:
            tuple: ``((feature,), match)``, the (B, C) feature in a tuple as
            backbones return it, and the (B,) matching term (None in phase
            1).
        """
        bb = self.backbone
        if not self.with_neck:
            return bb(inputs), None
        k, num_layers = self.share_blocks, bb.num_layers
        # Nothing upstream of the pool trains in phase 2, so the prefix needs
        # no graph; a user who unfreezes the backbone gets one.
        prefix_grad = torch.is_grad_enabled() and self._backbone_trainable()
        if self.shared_prefix:
            with torch.set_grad_enabled(prefix_grad):
                prefix = bb.forward_blocks(bb.embed(inputs), 0, k)  # (B,N,C)
            with torch.no_grad():
                query = bb.forward_final(
                    bb.forward_blocks(prefix, k, num_layers))  # (B, C)
        else:
            with torch.no_grad():
                query = bb.forward_final(
                    bb.forward_blocks(bb.embed(inputs), 0, num_layers))
            with torch.set_grad_enabled(prefix_grad):
                prefix = bb.forward_blocks(bb.embed(inputs), 0, k)
        # (B, L - k, P2, C), (B,)
        group_prompts, match = self.neck(query)
        tokens = bb.forward_blocks(prefix,
                                   k,
                                   num_layers,
                                   extra_prompts=group_prompts)
        return (bb.forward_final(tokens), ), match

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck'):
        """Extract features.

        Args:
            inputs (Tensor): (B, 3, H, W) images.
            stage (str): ``'backbone'`` or ``'neck'``: the tuple holding the
                (B, C) LPT feature; ``'pre_logits'``: the head's pre-logits;
                ``'query'``: the (B, C) phase-1 feature used as the query.
                Defaults to 'neck'.
        """
        if not self.with_neck and stage != 'query':
            return super().extract_feat(inputs, stage=stage)
        if stage == 'query':
            bb = self.backbone
            with torch.no_grad():
                return bb.forward_final(
                    bb.forward_blocks(bb.embed(inputs), 0, bb.num_layers))
        if stage not in ('backbone', 'neck', 'pre_logits'):
            raise ValueError(
                f'Invalid output stage "{stage}", choose from "backbone", '
                '"neck", "pre_logits" and "query".')
        feats, _ = self.extract_lpt(inputs)
        if stage == 'pre_logits':
            return self.head.pre_logits(feats)
        return feats

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """Head losses plus the matching term ``loss_match``."""
        feats, match = self.extract_lpt(inputs)
        if match is None or not self.match_loss_weight:
            return self.head.loss(feats, data_samples)
        if hasattr(self.head, 'loss_and_weights'):
            # One split of the batch into its streams serves the head's
            # losses and the matching term's stream-weighted mean.
            losses, weights = self.head.loss_and_weights(feats, data_samples)
            weights = weights.to(match)  # (B,)
        else:
            losses = self.head.loss(feats, data_samples)
            weights = match.new_full(match.shape, 1. / match.numel())
        losses['loss_match'] = -self.match_loss_weight * (weights *
                                                          match).sum()
        return losses

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict through the same (shared-prefix) path as training."""
        feats, _ = self.extract_lpt(inputs)
        return self.head.predict(feats, data_samples, **kwargs)
