import pytest
import torch
import torch.nn.functional as F

from lpt_mmpretrain.models import PromptPoolNeck


def test_selects_top_k_by_cosine_and_averages():
    torch.manual_seed(0)
    neck = PromptPoolNeck(
        pool_size=5, prompt_length=3, top_k=2, embed_dims=8, num_layers=2)
    query = torch.randn(4, 8)
    prompts, match = neck(query)
    assert prompts.shape == (4, 2, 3, 8)
    assert match.shape == (4, )

    sim = F.normalize(query, dim=-1) @ F.normalize(neck.key, dim=-1).t()
    for b in range(4):
        order = sim[b].argsort(descending=True)[:2]
        expected = neck.prompt[order].mean(0)
        torch.testing.assert_close(prompts[b], expected)
        torch.testing.assert_close(match[b], sim[b, order].sum())
    # the scale of the query does not change the selection (cosine)
    prompts_scaled, _ = neck(query * 7.)
    torch.testing.assert_close(prompts_scaled, prompts)


def test_gradients_reach_pool_and_keys_not_query():
    neck = PromptPoolNeck(
        pool_size=4, prompt_length=2, top_k=2, embed_dims=6, num_layers=3)
    query = torch.randn(3, 6, requires_grad=True)
    prompts, match = neck(query)
    (prompts.sum() - match.sum()).backward()
    assert query.grad is None
    assert neck.prompt.grad is not None and neck.prompt.grad.abs().sum() > 0
    assert neck.key.grad is not None and neck.key.grad.abs().sum() > 0
    # only the selected entries receive gradient
    _, idx = neck.select(query.detach())
    unused = sorted(set(range(4)) - set(idx.flatten().tolist()))
    for i in unused:
        assert neck.prompt.grad[i].abs().sum() == 0


def test_errors():
    with pytest.raises(ValueError, match='top_k=3 must be between 1 and'):
        PromptPoolNeck(pool_size=2, top_k=3)
    with pytest.raises(ValueError, match='both'):
        PromptPoolNeck(embed_dims=8)
    neck = PromptPoolNeck(pool_size=3, top_k=1, embed_dims=8, num_layers=2)
    with pytest.raises(ValueError, match='embed_dims=16'):
        neck.build_pool(16, 2)
    with pytest.raises(ValueError, match=r'shape \(B, 8\)'):
        neck(torch.randn(2, 16))
    with pytest.raises(RuntimeError, match='no pool yet'):
        PromptPoolNeck(pool_size=3, top_k=1)(torch.randn(2, 8))
