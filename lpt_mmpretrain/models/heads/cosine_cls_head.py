import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...checks import check_fraction, check_min
from ...structures.dual_stream import get_streams, split_streams

__all__ = ['CosineClsHead']


@MODELS.register_module()
class CosineClsHead(ClsHead):
    """Cosine classifier head of LPT, with optional two-stream loss.

    ``forward`` returns the cosine similarities between the L2-normalised
    feature and the L2-normalised class weights (no bias), in [-1, 1]; dropout
    acts on the feature during training. The logit scale belongs to the loss
    (``AsymmetricGCLLoss.s``); ``pred_scale`` only sharpens the predicted
    scores.

    With ``ib_loss`` set, every training batch must come from
    ``DualClassBalancedSampler``: ``loss`` is applied to the class-balanced
    samples (key ``loss_cb``) and ``ib_loss`` to the instance-balanced ones,
    times ``max(0, ib_loss_weight * (E - e) / E)`` at epoch ``e`` of ``E``
    (key ``loss_ib``, see :meth:`set_train_progress`). The batch is split
    into its streams once per step (:meth:`loss_and_weights`).

    The class vectors start at unit norm (uniform in [-1, 1], then
    renormalised), as in the released LPT code: the logits are cosines, so an
    SGD step on a class direction scales with ``1 / |w|^2`` and the starting
    norm matters. ``init_cfg=dict(type='TruncNormal', layer='Linear',
    std=0.02)`` gives the former init (norms about 0.55 at width 768).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Number of channels of the input feature.
        dropout (float): Dropout probability on the feature during training.
            Defaults to 0.1.
        loss (dict | nn.Module): Loss of the whole batch, or of the
            class-balanced stream when ``ib_loss`` is set. Defaults to
            ``dict(type='AsymmetricGCLLoss')``.
        ib_loss (dict | nn.Module, optional): Loss of the instance-balanced
            stream. Defaults to None (one loss over the whole batch).
        ib_loss_weight (float): Weight of the instance-balanced loss at epoch
            0; it decays linearly to 0 at the last epoch. Defaults to 0.5.
        pred_scale (float): Scale of the cosine logits before the softmax of
            the predicted scores (the predicted label is unaffected).
            Defaults to 20.
        topk (int | Tuple[int]): Top-k accuracy. Defaults to ``(1, )``.
        cal_acc (bool): Whether to calculate accuracy during training.
            Defaults to False.
        init_cfg (dict, optional): The config to control the initialization.
            Defaults to None: unit-norm class vectors.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 dropout: float = 0.1,
                 loss: Union[dict, nn.Module] = dict(type='AsymmetricGCLLoss'),
                 ib_loss: Optional[Union[dict, nn.Module]] = None,
                 ib_loss_weight: float = 0.5,
                 pred_scale: float = 20.,
                 topk: Union[int, Tuple[int]] = (1, ),
                 cal_acc: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        if num_classes <= 0 or in_channels <= 0:
            raise ValueError(f'num_classes ({num_classes}) and in_channels '
                             f'({in_channels}) must be positive integers.')
        check_fraction('dropout', dropout)
        check_min('ib_loss_weight', ib_loss_weight, 0)
        check_min('pred_scale', pred_scale, 0, strict=True)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.pred_scale = pred_scale
        self.ib_loss_weight = ib_loss_weight
        # Weight of the instance-balanced loss; set_train_progress updates it.
        self.ib_weight = float(ib_loss_weight)

        if ib_loss is not None and not isinstance(ib_loss, nn.Module):
            ib_loss = MODELS.build(ib_loss)
        self.ib_loss_module = ib_loss
        self._warned_unused_streams = False

        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_channels, num_classes, bias=False)

    def init_weights(self) -> None:
        """Unit-norm class vectors, unless ``init_cfg`` is given."""
        if self.init_cfg is None and not self._is_init:
            with torch.no_grad():
                weight = self.fc.weight  # (num_classes, in_channels)
                weight.uniform_(-1., 1.)
                weight.div_(weight.norm(dim=1, keepdim=True))
        super().init_weights()

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The feature of the last stage, of shape (B, in_channels)."""
        x = feats[-1]
        if x.ndim != 2 or x.size(1) != self.in_channels:
            raise ValueError(
                f'CosineClsHead expects a (B, {self.in_channels}) feature, '
                f'got shape {tuple(x.shape)}. Pool spatial features first '
                '(e.g. neck=dict(type="GlobalAveragePooling")) and set '
                'in_channels to the feature width.')
        return x

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Cosine logits of shape (B, num_classes), in [-1, 1]."""
        x = self.dropout(self.pre_logits(feats))
        return F.linear(
            F.normalize(x, dim=1), F.normalize(self.fc.weight, dim=1))

    def set_train_progress(self, epoch: int, max_epochs: int) -> None:
        """Set the instance-balanced loss weight for a training epoch.

        Args:
            epoch (int): The current epoch, 0-based.
            max_epochs (int): The number of training epochs.
        """
        if max_epochs <= 0 or epoch < 0:
            raise ValueError(f'Need epoch >= 0 and max_epochs > 0, got '
                             f'epoch={epoch}, max_epochs={max_epochs}.')
        self.ib_weight = max(
            0.,
            self.ib_loss_weight * (max_epochs - epoch) / max_epochs)

    def set_class_counts(self, counts: Sequence[int]) -> Dict[str, bool]:
        """Give the training data set's class counts to the losses.

        Each loss with a ``set_cls_num_list`` method (``AsymmetricGCLLoss``)
        gets them, unless it was built with its own ``cls_num_list``: it
        keeps those, which must cover as many classes. ``ClassCountsHook``
        calls this before training.

        Args:
            counts (Sequence[int]): Training images per class, label order.

        Returns:
            dict[str, bool]: For each loss that takes counts, keyed by its
            attribute name (``loss_module``, ``ib_loss_module``), True if it
            took ``counts``, False if it kept its own.
        """
        taken = dict()
        for name in ('loss_module', 'ib_loss_module'):
            loss = getattr(self, name)
            if not callable(getattr(loss, 'set_cls_num_list', None)):
                continue  # e.g. CrossEntropyLoss, or no ib_loss
            own = loss.cls_num_list
            if own is None:
                loss.set_cls_num_list(counts)
            elif len(own) != len(counts):
                raise ValueError(
                    f'`head.{name}` was given counts of {len(own)} classes '
                    f'but the training data set has {len(counts)} classes. '
                    'Remove its cls_num_list= (ClassCountsHook sets it from '
                    'the data set) or make it match the data set.')
            taken[name] = own is None
        return taken

    def sample_weights(self,
                       data_samples: Sequence[DataSample]) -> torch.Tensor:
        """Per-sample weights giving the loss's stream-weighted mean.

        Args:
            data_samples (Sequence[DataSample]): The batch's data samples.

        Returns:
            torch.Tensor: (B,) float32 weights on the head's device: ``1/B``
            each with one loss over the batch; with ``ib_loss``, ``1/B_cb``
            on class-balanced and ``ib_weight/B_ib`` on instance-balanced
            samples.
        """
        return self._weights(self._split(data_samples), len(data_samples))

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """The losses of a training batch (see :meth:`loss_and_weights`)."""
        return self.loss_and_weights(feats, data_samples, **kwargs)[0]

    def loss_and_weights(self, feats: Tuple[torch.Tensor],
                         data_samples: List[DataSample],
                         **kwargs) -> Tuple[dict, torch.Tensor]:
        """The losses and the per-sample weights of one split of the batch.

        The streams are read from the data samples and split once; the
        weights (:meth:`sample_weights`) give another per-sample term, such
        as LPT's matching term, the same stream-weighted mean as the loss.

        Args:
            feats (tuple[torch.Tensor]): The features; the last is used.
            data_samples (List[DataSample]): The batch's data samples.
            **kwargs: Passed to the losses.

        Returns:
            tuple[dict, torch.Tensor]: The losses and the (B,) weights.
        """
        masks = self._split(data_samples)
        losses = self._get_loss(self(feats), data_samples, masks, **kwargs)
        return losses, self._weights(masks, len(data_samples))

    def _split(
        self, data_samples: Sequence[DataSample]
    ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The (cb, ib) masks of a batch, or None with one loss."""
        # (B,) stream ids, read from the metainfo once per step.
        streams = get_streams(data_samples, device=self.fc.weight.device)
        if self.ib_loss_module is None:
            if streams is not None and not self._warned_unused_streams:
                print_log(
                    'The batch carries sampling streams but CosineClsHead '
                    'has no ib_loss: one loss is applied to the whole batch. '
                    'Set ib_loss for the dual-stream loss of LPT.',
                    logger='current',
                    level=logging.WARNING)
                self._warned_unused_streams = True
            return None
        if streams is None:
            raise ValueError(
                'CosineClsHead has an ib_loss, so every training batch must '
                'carry sampling streams: use DualClassBalancedSampler as the '
                "train_dataloader sampler (with batch_sampler=dict(type="
                "'DualStreamBatchSampler')), or remove ib_loss from the head.")
        return split_streams(streams)

    def _weights(self, masks: Optional[Tuple[torch.Tensor, torch.Tensor]],
                 num_samples: int) -> torch.Tensor:
        """(B,) weights of the stream-weighted mean for ``masks``."""
        device = self.fc.weight.device
        if masks is None:
            return torch.full((num_samples, ), 1. / num_samples, device=device)
        cb_mask, ib_mask = masks
        weights = torch.zeros(num_samples, device=device)
        weights[cb_mask] = 1. / int(cb_mask.sum())
        weights[ib_mask] = self.ib_weight / int(ib_mask.sum())
        return weights

    def _get_loss(self,
                  cls_score: torch.Tensor,
                  data_samples: List[DataSample],
                  masks: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                  **kwargs) -> dict:
        """Compute the loss(es) from the cosine logits and stream masks."""
        if 'gt_score' in data_samples[0]:
            # Batch augmentations turn labels into scores; the loss decides.
            target = torch.stack([i.gt_score for i in data_samples])
        else:
            target = torch.cat([i.gt_label for i in data_samples])

        losses = dict()
        if masks is None:
            losses['loss'] = self.loss_module(
                cls_score, target, avg_factor=cls_score.size(0), **kwargs)
        else:
            cb_mask, ib_mask = masks
            losses['loss_cb'] = self.loss_module(
                cls_score[cb_mask],
                target[cb_mask],
                avg_factor=int(cb_mask.sum()),
                **kwargs)
            losses['loss_ib'] = self.ib_weight * self.ib_loss_module(
                cls_score[ib_mask],
                target[ib_mask],
                avg_factor=int(ib_mask.sum()),
                **kwargs)

        if self.cal_acc:
            if target.ndim != 1:
                raise ValueError(
                    'cal_acc=True needs hard labels; with batch augmentations '
                    'like Mixup, accuracy during training is pointless.')
            acc = Accuracy.calculate(cls_score, target, topk=self.topk)
            losses.update({
                f'accuracy_top-{k}': a
                for k, a in zip(self.topk, acc)
            })
        return losses

    def _get_predictions(self, cls_score: torch.Tensor,
                         data_samples: Optional[List[Optional[DataSample]]]
                         ) -> List[DataSample]:
        """Scores are softmax(pred_scale * cosine logits)."""
        return super()._get_predictions(self.pred_scale * cls_score,
                                        data_samples)
