"""Networks: embeddings, shapes, conditioning conventions and errors that name the fix."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from sciddm.nets import FourierEmbedding, MLPDenoiserNet, SinusoidalEmbedding, UNetDenoiserNet



def _perturb(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Randomise every parameter (MONAI zero-initialises its output conv, hiding real behaviour)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return net


def test_sinusoidal_embedding_formula() -> None:
    emb = SinusoidalEmbedding(8, scale=1000.0, max_period=10000.0)
    t = torch.tensor([0.0, 0.25, 1.0])
    i = torch.arange(4, dtype=torch.float64)
    args = 1000.0 * t.double()[:, None] * torch.exp(-math.log(10000.0) * i / 4)[None]
    want = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    torch.testing.assert_close(emb(t).double(), want, rtol=1e-5, atol=1e-4)


def test_fourier_embedding_is_stored_and_bounded() -> None:
    emb = FourierEmbedding(16, scale=16.0, generator=torch.Generator().manual_seed(0))
    out = emb(torch.rand(5))
    assert out.shape == (5, 16)
    # cos^2 + sin^2 = 1 for every frequency
    torch.testing.assert_close(out[:, :8] ** 2 + out[:, 8:] ** 2, torch.ones(5, 8))
    assert "freqs" in emb.state_dict()  # persistent: a checkpoint reproduces the embedding


@pytest.mark.parametrize("bad", [0, 7])
def test_embedding_dim_must_be_even(bad: int) -> None:
    with pytest.raises(ValueError, match="even"):
        SinusoidalEmbedding(bad)


def test_mlp_shapes_and_dtype() -> None:
    net = MLPDenoiserNet(5, width=32, depth=2, emb_dim=16)
    x = torch.randn(7, 5, dtype=torch.float64)
    out = net(x, torch.rand(7))
    assert out.shape == (7, 5) and out.dtype == torch.float64
    assert net(x, torch.tensor(0.3)).shape == (7, 5)  # scalar t broadcast over the batch


def test_mlp_rejects_bad_shapes_with_the_fix() -> None:
    net = MLPDenoiserNet(4, width=16, depth=1, emb_dim=8)
    with pytest.raises(ValueError, match=r"\(B, 4\).*set `dim`"):
        net(torch.randn(3, 2, 2), torch.rand(3))
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(B,\)"):
        net(torch.randn(3, 4), torch.rand(4))
    with pytest.raises(ValueError, match="cond_dim > 0"):
        net(torch.randn(3, 4), torch.rand(3), cond=torch.randn(3, 2))


def test_mlp_conditioning_and_null_convention() -> None:
    """drop_mask rows equal the unconditional call net(x, t); kept rows equal the conditional call."""
    net = _perturb(MLPDenoiserNet(3, width=32, depth=2, emb_dim=16, cond_dim=2, num_classes=4))
    x, t = torch.randn(6, 3), torch.rand(6)
    cond, label = torch.randn(6, 2), torch.tensor([0, 1, 2, 3, 0, 1])
    drop = torch.tensor([True, False, True, False, False, True])
    mixed = net(x, t, cond=cond, label=label, drop_mask=drop)
    uncond = net(x, t)
    full = net(x, t, cond=cond, label=label)
    torch.testing.assert_close(mixed[drop], uncond[drop])
    torch.testing.assert_close(mixed[~drop], full[~drop])
    assert not torch.allclose(uncond, full)  # the conditioning does reach the output
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        net(x, t, label=torch.full((6,), 4))
    with pytest.raises(ValueError, match=r"cond must have shape \(6, 2\)"):
        net(x, t, cond=torch.randn(6, 3))


def _tiny_unet(spatial_dims: int, **kw) -> UNetDenoiserNet:
    args = dict(channels=(8, 16), attention_levels=(False, True), num_res_blocks=1, norm_num_groups=8,
                num_head_channels=8)
    args.update(kw)
    return UNetDenoiserNet(spatial_dims, 2, **args)


@pytest.mark.parametrize("spatial_dims, size", [(1, (8,)), (2, (8, 4)), (3, (4, 4, 4))])
def test_unet_shapes_every_rank(spatial_dims: int, size: tuple[int, ...]) -> None:
    net = _perturb(_tiny_unet(spatial_dims))
    x = torch.randn(2, 2, *size)
    out = net(x, torch.rand(2))
    assert out.shape == x.shape
    # the time input reaches the output (t -> MONAI timesteps = 1000 t)
    assert not torch.allclose(out, net(x, torch.rand(2)))


def test_unet_maps_t_to_timesteps() -> None:
    net = _perturb(_tiny_unet(2, time_scale=1000.0))
    seen: list[torch.Tensor] = []
    net.unet.time_embed.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    t = torch.tensor([0.1, 0.5])
    net(torch.randn(2, 2, 4, 4), t)
    from monai.networks.nets.diffusion_model_unet import get_timestep_embedding

    torch.testing.assert_close(seen[0], get_timestep_embedding(1000.0 * t, 8))


def test_unet_bad_shapes_name_the_fix() -> None:
    net = _tiny_unet(2)
    with pytest.raises(ValueError, match="not divisible by 2.*pad or crop"):
        net(torch.randn(1, 2, 7, 8), torch.rand(1))
    with pytest.raises(ValueError, match="set in_channels=3"):
        net(torch.randn(1, 3, 8, 8), torch.rand(1))
    with pytest.raises(ValueError, match="spatial_dims=1"):
        net(torch.randn(1, 2, 8), torch.rand(1))
    with pytest.raises(ValueError, match="multiple of norm_num_groups"):
        UNetDenoiserNet(2, 1, channels=(8, 12), attention_levels=(False, False), norm_num_groups=8)


def test_unet_conditioning_null_convention() -> None:
    net = _perturb(_tiny_unet(2, cond_channels=1, num_classes=3))
    x, t = torch.randn(4, 2, 4, 4), torch.rand(4)
    cond, label = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    drop = torch.tensor([True, False, False, True])
    mixed = net(x, t, cond=cond, label=label, drop_mask=drop)
    torch.testing.assert_close(mixed[drop], net(x, t)[drop])
    torch.testing.assert_close(mixed[~drop], net(x, t, cond=cond, label=label)[~drop])
    with pytest.raises(ValueError, match=r"cond must have shape \(4, 1, 4, 4\)"):
        net(x, t, cond=torch.randn(4, 2, 4, 4))


@pytest.mark.parametrize("spatial_dims, size", [(1, (8,)), (2, (4, 4))])
def test_gradient_checkpointing_same_values_and_gradients(spatial_dims: int, size: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    plain = _perturb(_tiny_unet(spatial_dims))
    ckpt = copy.deepcopy(plain)
    ckpt_net = _tiny_unet(spatial_dims, gradient_checkpointing=True)
    ckpt_net.load_state_dict(ckpt.state_dict())  # state-dict keys are unchanged by checkpointing
    x, t = torch.randn(2, 2, *size), torch.rand(2)
    out_a, out_b = plain(x, t), ckpt_net(x, t)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(out_a, out_b)
    for (name, pa), pb in zip(plain.named_parameters(), ckpt_net.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)
    assert type(ckpt_net.unet.down_blocks[0]).__name__.startswith("CheckpointedForward")


def test_unet_out_channels_for_a_regression_from_a_condition() -> None:
    net = UNetDenoiserNet(2, 4, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1,
                          norm_num_groups=4, out_channels=2)
    assert net(torch.randn(3, 4, 8, 8), torch.zeros(3)).shape == (3, 2, 8, 8)
    default = UNetDenoiserNet(2, 4, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1,
                              norm_num_groups=4)
    assert default(torch.randn(3, 4, 8, 8), torch.zeros(3)).shape == (3, 4, 8, 8)  # a denoiser keeps x's channels
    with pytest.raises(ValueError, match="out_channels"):
        UNetDenoiserNet(2, 4, channels=[8, 8], attention_levels=[False, False], norm_num_groups=4, out_channels=0)
