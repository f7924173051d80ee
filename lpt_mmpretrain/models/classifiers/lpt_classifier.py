from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...checkpoints import (check_trained_state, message, phase1_state,
                            resolve_checkpoint_path)
from .model_index_mixin import ModelIndexMixin

__all__ = ['LPTClassifier']


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
            raise ValueError(message('phase1_without_neck'))
        if neck is not None and phase1_checkpoint is None \
                and not allow_no_phase1:
            raise ValueError(message('phase2_without_phase1'))
        super().__init__(
            backbone=backbone,
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
        state = phase1_state(self, filename)
        with torch.no_grad():
            own = self.state_dict(keep_vars=True)
            for key, value in state.items():
                own[key].copy_(value)
        print_log(
            f'Loaded the shared prompt and head of phase 1 from {filename}.',
            logger='current')

    def _check_loaded(self, state_dict: dict, prefix: str, *args) -> None:
        """Load-state-dict pre-hook: the trained tensors must all fit
        (:func:`check_trained_state`), on every loading path."""
        check_trained_state(self, state_dict, prefix)

    def _backbone_trainable(self) -> bool:
        return any(p.requires_grad for p in self.backbone.parameters())

    def extract_lpt(self, inputs: torch.Tensor
                    ) -> Tuple[Tuple[torch.Tensor], torch.Tensor]:
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
        tokens = bb.forward_blocks(
            prefix, k, num_layers, extra_prompts=group_prompts)
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
