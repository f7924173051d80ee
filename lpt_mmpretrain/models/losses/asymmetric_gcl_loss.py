from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.losses.utils import weight_reduce_loss
from mmpretrain.registry import MODELS

from ...checks import check_fraction, check_min, shape_error
from ...datasets.class_counts import check_class_counts

__all__ = ['AsymmetricGCLLoss']


@MODELS.register_module()
class AsymmetricGCLLoss(nn.Module):
    r"""Asymmetric Gaussian Clouded Logit loss (A-GCL) of LPT.

    Takes cosine logits :math:`z` (B x C) and hard labels :math:`y`:

    1. :math:`\epsilon_j = (\log n_{max} - \log n_j) /
       (\log n_{max} - \log n_{min})`, from the training class counts
       :math:`n_j` (0 for the largest class, 1 for the smallest; all 0 when
       every class has the same count).
    2. Gaussian cloud (training only): :math:`\tilde z_j = z_j -
       noise\_mul \cdot |d_j| \cdot \epsilon_j` with :math:`d_j \sim
       N(0, \sigma)` clamped to [-1, 1], drawn per sample and class.
    3. Margin on the target only: :math:`\tilde z_y = \tilde z_y - m`.
    4. :math:`p = softmax(s \cdot \tilde z)`.
    5. :math:`t = (1 - ls) \cdot onehot(y) + ls / C`,
       :math:`w_y = (1 - p_y)^{\gamma_+}`, :math:`w_j = p_j^{\gamma_-}`
       (:math:`j \ne y`); the weights stay in the autograd graph and
       :math:`loss_i = -\sum_j t_j w_j \log p_j`.

    The loss is computed in float32 whatever the dtype of ``cls_score``.

    Args:
        cls_num_list (Sequence[int], optional): Number of training images of
            every class, in label order. Defaults to None: the counts are set
            later with :meth:`set_cls_num_list`; before training,
            ``ClassCountsHook`` gives the training data set's counts to the
            head, which passes them to its losses
            (:meth:`CosineClsHead.set_class_counts`).
        m (float): Margin subtracted from the target logit. Defaults to 0.1.
        s (float): Scale of the logits before the softmax. Defaults to 20.
        noise_mul (float): Strength of the Gaussian cloud. Defaults to 0.5.
        noise_sigma (float): Standard deviation of the Gaussian noise ``d``
            (clamped to [-1, 1] after sampling). Defaults to 1/3.
        gamma_pos (float): Focusing exponent of the target class weight
            ``(1 - p_y) ^ gamma_pos``. Defaults to 0.
        gamma_neg (float): Focusing exponent of the non-target weights
            ``p_j ^ gamma_neg``. Defaults to 4.
        label_smoothing (float): Label smoothing value ``ls``.
            Defaults to 0.1.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        reduction (str): Reduction over the batch: "none", "mean" or "sum".
            Defaults to "mean".
    """

    def __init__(self,
                 cls_num_list: Optional[Sequence[int]] = None,
                 m: float = 0.1,
                 s: float = 20.,
                 noise_mul: float = 0.5,
                 noise_sigma: float = 1. / 3.,
                 gamma_pos: float = 0.,
                 gamma_neg: float = 4.,
                 label_smoothing: float = 0.1,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean'):
        super().__init__()
        check_min('s', s, 0, strict=True, prefix='The logit scale ')
        if noise_mul < 0 or noise_sigma < 0:
            raise ValueError(
                f'noise_mul ({noise_mul}) and noise_sigma ({noise_sigma}) '
                'must be >= 0; set noise_mul=0 to disable the noise.')
        if gamma_pos < 0 or gamma_neg < 0:
            raise ValueError(f'gamma_pos ({gamma_pos}) and gamma_neg '
                             f'({gamma_neg}) must be >= 0.')
        check_fraction('label_smoothing', label_smoothing)
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError('reduction must be "none", "mean" or "sum", got '
                             f'{reduction!r}.')
        self.m = m
        self.s = s
        self.noise_mul = noise_mul
        self.noise_sigma = noise_sigma
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.label_smoothing = label_smoothing
        self.loss_weight = loss_weight
        self.reduction = reduction

        #: The (C,) float64 class counts in use (CPU), or None until set.
        self.cls_num_list: Optional[torch.Tensor] = None
        # Not persistent: the counts come from the training data set of each
        # run (ClassCountsHook), so checkpoints do not depend on them.
        self.register_buffer('noise_eps', None, persistent=False)
        if cls_num_list is not None:
            self.set_cls_num_list(cls_num_list)

    def set_cls_num_list(self, cls_num_list: Union[Sequence[int], np.ndarray,
                                                   torch.Tensor]) -> None:
        """Set the training class counts and the per-class noise scale.

        Args:
            cls_num_list (Sequence[int] | np.ndarray | torch.Tensor): Number
                of training images of every class, in label order.
        """
        if isinstance(cls_num_list, torch.Tensor):
            counts = cls_num_list.detach().cpu().to(torch.float64)
        else:
            counts = torch.as_tensor(
                np.asarray(cls_num_list, dtype=np.float64))
        if counts.ndim != 1 or counts.numel() == 0:
            raise ValueError(
                'cls_num_list must be a non-empty 1-D list of per-class '
                f'training counts, got shape {tuple(counts.shape)}.')
        if not torch.isfinite(counts).all():
            raise ValueError(f'cls_num_list has non-finite values: '
                             f'{counts.tolist()}.')
        check_class_counts(
            counts.tolist(),
            source='cls_num_list',
            name='AsymmetricGCLLoss',
            reason='A-GCL takes log(count), so every class needs at least '
            'one training image: fix the data set split / imbalance profile '
            'or drop those classes.')
        log_n = counts.log()
        span = log_n.max() - log_n.min()
        if span > 0:
            eps = (log_n.max() - log_n) / span
        else:  # all counts equal: no class is rarer, no noise (avoid 0 / 0)
            eps = torch.zeros_like(log_n)
        device = self.noise_eps.device if self.noise_eps is not None \
            else None
        self.cls_num_list = counts
        self.noise_eps = eps.to(device=device, dtype=torch.float32)

    def _check_inputs(self, cls_score: torch.Tensor,
                      label: torch.Tensor) -> torch.Tensor:
        """Validate the inputs and return the labels as a (B,) long tensor."""
        if cls_score.ndim != 2:
            raise shape_error('AsymmetricGCLLoss', 'cls_score',
                              '(B, num_classes)', cls_score.shape)
        num_samples, num_classes = cls_score.shape
        if label.is_floating_point() or (label.ndim == 2
                                         and label.size(1) > 1):
            raise ValueError(
                'AsymmetricGCLLoss needs hard integer labels of shape (B,), '
                f'got {label.dtype} labels of shape {tuple(label.shape)}. '
                'Soft labels (e.g. from Mixup / CutMix batch augments, which '
                'set gt_score) are not supported: remove '
                'model.train_cfg.augments or use another loss.')
        if label.ndim == 2 and label.size(1) == 1:
            label = label.view(-1)
        if label.ndim != 1 or label.numel() != num_samples:
            raise ValueError(
                f'AsymmetricGCLLoss expects labels of shape ({num_samples},) '
                f'for cls_score of shape {tuple(cls_score.shape)}, got '
                f'{tuple(label.shape)}.')
        if num_samples > 0 and (label.min() < 0 or label.max() >= num_classes):
            raise ValueError(
                f'Labels must be in [0, {num_classes - 1}], got labels in '
                f'[{int(label.min())}, {int(label.max())}]. Check the '
                "head's num_classes against the data set's classes.")
        if self.noise_eps is None:
            raise RuntimeError(
                'AsymmetricGCLLoss has no class counts. Pass cls_num_list= '
                'to the loss, or add dict(type="ClassCountsHook") to '
                'custom_hooks (it is in configs/_base_/default_runtime.py) '
                "so the training data set's counts are set before training "
                '(or call set_class_counts(counts) on the head).')
        if self.noise_eps.numel() != num_classes:
            raise ValueError(
                f'The loss has class counts for {self.noise_eps.numel()} '
                f'classes but cls_score has {num_classes} classes. The '
                "head's num_classes must equal the number of classes of the "
                'training data set.')
        return label.long()

    def perturb(self, cls_score: torch.Tensor,
                label: torch.Tensor) -> torch.Tensor:
        """The Gaussian-clouded logits with the target margin (steps 2, 3).

        The noise is drawn only in training mode.

        Args:
            cls_score (torch.Tensor): Cosine logits of shape (B, C).
            label (torch.Tensor): Hard labels of shape (B,).

        Returns:
            torch.Tensor: The perturbed logits (B, C) in float32, before the
            scale ``s``.
        """
        label = self._check_inputs(cls_score, label)
        return self._perturb(cls_score.float(), label)

    def _perturb(self, logits: torch.Tensor,
                 label: torch.Tensor) -> torch.Tensor:
        """:meth:`perturb` on checked float32 inputs."""
        if self.training and self.noise_mul > 0:
            if self.noise_eps.device != logits.device:
                # The counts are set on CPU; move them once, not every step.
                self.noise_eps = self.noise_eps.to(logits.device)
            noise = (torch.randn_like(logits) * self.noise_sigma).clamp(-1, 1)
            eps = self.noise_eps.float()  # (C,)
            logits = logits - self.noise_mul * noise.abs() * eps
        onehot = F.one_hot(label, logits.size(1)).to(logits.dtype)  # (B, C)
        return logits - self.m * onehot

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        """Compute the A-GCL loss.

        Args:
            cls_score (torch.Tensor): Cosine logits of shape (B, C).
            label (torch.Tensor): Hard labels of shape (B,) or (B, 1).
            weight (torch.Tensor, optional): Sample-wise loss weight of shape
                (B,). Defaults to None.
            avg_factor (float, optional): Average factor of the mean
                reduction. Defaults to None.
            reduction_override (str, optional): Overrides ``reduction``.
                Defaults to None.
            **kwargs: Ignored, for the interface of MMPretrain's losses.

        Returns:
            torch.Tensor: The float32 loss, times ``loss_weight``.
        """
        if reduction_override not in (None, 'none', 'mean', 'sum'):
            raise ValueError('reduction_override must be None, "none", '
                             f'"mean" or "sum", got {reduction_override!r}.')
        reduction = reduction_override or self.reduction
        label = self._check_inputs(cls_score, label)
        num_samples, num_classes = cls_score.shape

        logits = self._perturb(cls_score.float(), label)  # (B, C)
        log_p = F.log_softmax(self.s * logits, dim=1)
        onehot = F.one_hot(label, num_classes).to(torch.bool)  # (B, C)
        target = torch.full_like(log_p, self.label_smoothing / num_classes)
        target = target + (1 - self.label_smoothing) * onehot

        # The clamp keeps pow's gradient finite where its base reaches 0
        # (e.g. gamma 0.5 at p_y = 1) and makes pow(0, 0) = 1.
        tiny = torch.finfo(torch.float32).tiny
        w_pos = (-torch.expm1(log_p)).clamp(min=tiny).pow(self.gamma_pos)
        w_neg = log_p.exp().clamp(min=tiny).pow(self.gamma_neg)
        focus = torch.where(onehot, w_pos, w_neg)
        loss = -(target * focus * log_p).sum(dim=1)  # (B,)

        if weight is not None:
            if weight.numel() != num_samples:
                raise ValueError(
                    f'weight must hold one value per sample ({num_samples}),'
                    f' got shape {tuple(weight.shape)}.')
            weight = weight.reshape(-1).float()
        loss = weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss
