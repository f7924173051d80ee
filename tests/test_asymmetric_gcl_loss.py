import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from lpt_mmpretrain.models.losses.asymmetric_gcl_loss import AsymmetricGCLLoss

COUNTS = [100, 40, 12, 5, 1]


def reference_agcl(z, y, counts, m, s, gamma_pos, gamma_neg, ls):
    """Per-sample A-GCL without noise, straight from the formula (float64)."""
    num_samples, num_classes = z.shape
    z = z.double()
    losses = []
    for i in range(num_samples):
        shifted = [
            z[i, j] - (m if j == y[i] else 0.) for j in range(num_classes)
        ]
        logits = torch.stack(shifted) * s
        p = torch.exp(logits) / torch.exp(logits).sum()
        loss_i = 0.
        for j in range(num_classes):
            t = (1 - ls) * (1. if j == y[i] else 0.) + ls / num_classes
            if j == y[i]:
                w = (1 - p[j])**gamma_pos
            else:
                w = p[j]**gamma_neg
            loss_i = loss_i - t * w * torch.log(p[j])
        losses.append(loss_i)
    return torch.stack(losses)


def random_batch(num_samples=6, num_classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.rand(num_samples, num_classes, generator=gen) * 2 - 1
    y = torch.randint(0, num_classes, (num_samples, ), generator=gen)
    return z, y


@pytest.mark.parametrize('gammas', [(0., 4.), (0.5, 8.)])
@pytest.mark.parametrize('ls', [0.1, 0.])
@pytest.mark.parametrize('training', [True, False])
def test_matches_formula_without_noise(gammas, ls, training):
    gamma_pos, gamma_neg = gammas
    loss_fn = AsymmetricGCLLoss(
        COUNTS,
        noise_mul=0.,
        gamma_pos=gamma_pos,
        gamma_neg=gamma_neg,
        label_smoothing=ls)
    loss_fn.train(training)
    z, y = random_batch()
    z_ours = z.clone().requires_grad_()
    z_ref = z.clone().double().requires_grad_()
    ours = loss_fn(z_ours, y)
    ref = reference_agcl(z_ref, y, COUNTS, 0.1, 20., gamma_pos, gamma_neg,
                         ls).mean()
    torch.testing.assert_close(ours, ref.float(), rtol=1e-5, atol=1e-6)
    # Same gradient as the formula with the weights kept in the graph.
    ours.backward()
    ref.backward()
    torch.testing.assert_close(
        z_ours.grad, z_ref.grad.float(), rtol=1e-4, atol=1e-6)


def test_weights_are_not_detached():
    z, y = random_batch()
    z1 = z.clone().requires_grad_()
    z2 = z.clone().requires_grad_()
    loss_fn = AsymmetricGCLLoss(COUNTS, noise_mul=0., gamma_pos=0.5)
    loss_fn(z1, y).backward()
    # The same loss with detached weights has another gradient.
    log_p = F.log_softmax(20 * (z2 - 0.1 * F.one_hot(y, 5)), 1)
    p = log_p.exp().detach()
    onehot = F.one_hot(y, 5).bool()
    w = torch.where(onehot, (1 - p)**0.5, p**4)
    t = 0.9 * onehot + 0.1 / 5
    (-(t * w * log_p).sum(1).mean()).backward()
    assert not torch.allclose(z1.grad, z2.grad, atol=1e-4)


def test_zero_gammas_is_label_smoothed_cross_entropy():
    # pow(0, 0) = 1: with s = 200 some p_j underflow to 0 in float32.
    loss_fn = AsymmetricGCLLoss(
        COUNTS, noise_mul=0., s=200., gamma_pos=0., gamma_neg=0.)
    z, y = random_batch()
    expected = F.cross_entropy(
        200. * (z - 0.1 * F.one_hot(y, 5)), y, label_smoothing=0.1)
    torch.testing.assert_close(loss_fn(z, y), expected)


def test_eps_values_and_buffers():
    loss_fn = AsymmetricGCLLoss(COUNTS)
    log_n = torch.tensor(COUNTS, dtype=torch.float64).log()
    expected = (math.log(100) - log_n) / (math.log(100) - math.log(1))
    torch.testing.assert_close(loss_fn.noise_eps, expected.float())
    assert loss_fn.noise_eps[0] == 0 and loss_fn.noise_eps[-1] == 1
    assert loss_fn.cls_num_list.tolist() == COUNTS
    # Counts come from the data set in every run, not from checkpoints.
    assert loss_fn.state_dict() == {}
    # Equal counts: no class is rarer, eps = 0 (no 0 / 0).
    loss_fn.set_cls_num_list([7, 7, 7])
    assert loss_fn.noise_eps.tolist() == [0., 0., 0.]


def test_perturb_noise_by_frequency():
    torch.manual_seed(0)
    loss_fn = AsymmetricGCLLoss(COUNTS)  # noise_mul 0.5, sigma 1/3
    loss_fn.train()
    num_samples = 4000
    z = torch.rand(num_samples, 5) * 2 - 1
    y = torch.zeros(num_samples, dtype=torch.long)
    shift = z - loss_fn.perturb(z, y)  # (B, C), >= 0
    # Margin only on the target; the most frequent class gets no noise.
    torch.testing.assert_close(shift[:, 0], torch.full((num_samples, ), 0.1))
    assert (shift[:, 1:] >= 0).all()
    # |d| <= 1 after the clamp, so the shift is at most noise_mul * eps.
    assert (shift[:, 1:] <= 0.5 * loss_fn.noise_eps[1:] + 1e-6).all()
    mean_shift = shift[:, 1:].mean(0)
    assert (mean_shift[1:] > mean_shift[:-1]).all()
    # E|d| for N(0, 1/3) is (1/3) * sqrt(2/pi); the rarest class has eps 1.
    expected = 0.5 * (1 / 3) * math.sqrt(2 / math.pi)
    assert abs(mean_shift[-1].item() - expected) < 0.01
    # A new draw every call.
    assert not torch.equal(loss_fn.perturb(z, y), loss_fn.perturb(z, y))


def test_perturb_noise_sigma_is_used():
    torch.manual_seed(0)
    loss_fn = AsymmetricGCLLoss(COUNTS, noise_sigma=0.1, m=0.)
    z = torch.zeros(4000, 5)
    y = torch.zeros(4000, dtype=torch.long)
    mean_shift = (z - loss_fn.perturb(z, y))[:, -1].mean().item()
    assert abs(mean_shift - 0.5 * 0.1 * math.sqrt(2 / math.pi)) < 0.005


def test_no_noise_in_eval():
    loss_fn = AsymmetricGCLLoss(COUNTS).eval()
    z, y = random_batch()
    expected = z - 0.1 * F.one_hot(y, 5)
    torch.testing.assert_close(loss_fn.perturb(z, y), expected)
    assert torch.equal(loss_fn(z, y), loss_fn(z, y))
    loss_fn.train()
    torch.manual_seed(1)
    assert not torch.equal(loss_fn(z, y), loss_fn(z, y))


def test_equal_counts_no_noise_in_training():
    loss_fn = AsymmetricGCLLoss([3, 3, 3, 3, 3]).train()
    z, y = random_batch()
    torch.testing.assert_close(
        loss_fn.perturb(z, y), z - 0.1 * F.one_hot(y, 5))


@pytest.mark.parametrize('scale', [20., 1000.])
def test_finite_gradient_when_target_is_certain(scale):
    loss_fn = AsymmetricGCLLoss(COUNTS, s=scale, gamma_pos=0.5, gamma_neg=8.)
    z = torch.full((4, 5), -1.)
    y = torch.tensor([0, 1, 2, 3])
    z[torch.arange(4), y] = 1.
    z.requires_grad_()
    loss = loss_fn(z, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad).all()


def test_bf16_and_fp16_inputs():
    loss_fn = AsymmetricGCLLoss(COUNTS, gamma_pos=0.5, gamma_neg=8.)
    z, y = random_batch()
    for dtype in (torch.bfloat16, torch.float16):
        z_low = z.to(dtype).requires_grad_()
        loss = loss_fn(z_low, y)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert z_low.grad.dtype == dtype
        assert torch.isfinite(z_low.grad.float()).all()


def test_reduction_weight_avg_factor_and_loss_weight():
    loss_fn = AsymmetricGCLLoss(COUNTS, noise_mul=0.)
    z, y = random_batch()
    per_sample = loss_fn(z, y, reduction_override='none')
    assert per_sample.shape == (6, )
    torch.testing.assert_close(loss_fn(z, y), per_sample.mean())
    torch.testing.assert_close(
        loss_fn(z, y, reduction_override='sum'), per_sample.sum())
    weight = torch.tensor([1., 0., 2., 0.5, 1., 3.])
    torch.testing.assert_close(
        loss_fn(z, y, weight=weight, avg_factor=4),
        (per_sample * weight).sum() / 4)
    torch.testing.assert_close(loss_fn(z, y, avg_factor=6.), per_sample.mean())
    torch.testing.assert_close(loss_fn(z, y.view(-1, 1)),
                               per_sample.mean())  # (B, 1) labels
    doubled = AsymmetricGCLLoss(COUNTS, noise_mul=0., loss_weight=2.)
    torch.testing.assert_close(doubled(z, y), 2 * per_sample.mean())
    with pytest.raises(ValueError, match='avg_factor'):
        loss_fn(z, y, avg_factor=4, reduction_override='sum')


def test_registry_build_and_late_counts():
    loss_fn = MODELS.build(dict(type='AsymmetricGCLLoss'))
    assert loss_fn.cls_num_list is None
    z, y = random_batch()
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        loss_fn(z, y)
    loss_fn.set_cls_num_list(torch.tensor(COUNTS))
    assert torch.isfinite(loss_fn(z, y))


def test_input_errors():
    loss_fn = AsymmetricGCLLoss(COUNTS)
    z, y = random_batch()
    with pytest.raises(ValueError, match=r'cls_score of shape \(B'):
        loss_fn(z[0], y)
    with pytest.raises(ValueError, match=r'cls_score of shape \(B'):
        loss_fn(z[None], y)
    with pytest.raises(ValueError, match='hard integer labels'):
        loss_fn(z, F.one_hot(y, 5).float())  # Mixup-style soft labels
    with pytest.raises(ValueError, match='hard integer labels'):
        loss_fn(z, y.float())
    with pytest.raises(ValueError, match=r'labels of shape \(6,\)'):
        loss_fn(z, y[:4])
    with pytest.raises(ValueError, match=r'Labels must be in \[0, 4\]'):
        loss_fn(z, torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match=r'Labels must be in \[0, 4\]'):
        loss_fn(z, torch.tensor([0, 1, 2, 3, 4, -1]))
    with pytest.raises(ValueError, match='counts for 5 classes but cls_score'):
        loss_fn(torch.zeros(6, 7), y)
    with pytest.raises(ValueError, match='one value per sample'):
        loss_fn(z, y, weight=torch.ones(6, 2))


def test_count_errors():
    loss_fn = AsymmetricGCLLoss()
    with pytest.raises(
            ValueError, match=r'no training image.*class 1, 3\.') as err:
        loss_fn.set_cls_num_list([5, 0, 3, 0])
    assert 'at least one training image' in str(err.value)
    with pytest.raises(ValueError, match=r'no training image.*class 0\.'):
        loss_fn.set_cls_num_list([-2, 3])
    with pytest.raises(ValueError, match='1-D'):
        loss_fn.set_cls_num_list([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match='1-D'):
        loss_fn.set_cls_num_list([])
    with pytest.raises(ValueError, match='non-finite'):
        loss_fn.set_cls_num_list([1., float('nan')])
    assert loss_fn.cls_num_list is None


@pytest.mark.parametrize('kwargs', [
    dict(s=0.),
    dict(noise_mul=-1.),
    dict(noise_sigma=-0.1),
    dict(gamma_pos=-1.),
    dict(label_smoothing=1.),
    dict(reduction='max')
])
def test_constructor_errors(kwargs):
    with pytest.raises(ValueError):
        AsymmetricGCLLoss(**kwargs)


def test_counts_are_an_attribute_not_a_buffer():
    # The only buffer is the per-class noise scale that forward uses.
    loss_fn = AsymmetricGCLLoss(COUNTS)
    assert set(dict(loss_fn.named_buffers())) == {'noise_eps'}
    assert set(dict(AsymmetricGCLLoss().named_buffers())) == set()
