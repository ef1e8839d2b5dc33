"""``UNetDenoiserNet``: MONAI's ``DiffusionModelUNet`` (1-D, 2-D or 3-D) behind sciddm's net convention.

The wrapper maps the network's time input (``t`` in [0, 1], or EDM's ``c_noise``) to MONAI's
``timesteps`` argument as ``time_scale * t`` (1000 by default: the DDPM step index), adds
channel-concatenated (``cond``) and class (``label``) conditioning with classifier-free-guidance
nulls (zeros and an extra "null" class), checks shapes up front with errors that name the fix,
and can checkpoint activations of every down/middle/up block (MONAI's UNet has no switch for
it, so the wrapper recomputes each block's forward in the backward pass).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..denoiser import as_time
from .conditioning import check_drop_mask, check_labels

__all__ = ["UNetDenoiserNet"]


class _CheckpointedForward:
    """Mixin: recompute the block's forward during backward instead of storing activations."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.training and torch.is_grad_enabled():  # type: ignore[attr-defined]
            return checkpoint(super().forward, *args, use_reentrant=False, **kwargs)  # type: ignore[misc]
        return super().forward(*args, **kwargs)  # type: ignore[misc]


_SWAPPED: dict[tuple[type, type], type] = {}


def _swap_class(base: type, mixin: type) -> type:
    """A cached subclass of ``base`` whose forward comes from ``mixin``. Swapping a module's class
    for it keeps its parameters, state-dict keys and deep-copy behaviour unchanged."""
    key = (base, mixin)
    if key not in _SWAPPED:
        _SWAPPED[key] = type(f"{mixin.__name__.strip('_')}{base.__name__}", (mixin, base), {})
    return _SWAPPED[key]


def _enable_checkpointing(block: nn.Module) -> None:
    block.__class__ = _swap_class(type(block), _CheckpointedForward)


class _ResnetBlockAnyDim:
    """Mixin for MONAI's ``DiffusionUNetResnetBlock``: MONAI 1.6 broadcasts the time embedding as
    ``[:, :, None, None, None]`` whenever ``spatial_dims != 2``, which breaks 1-D UNets; this
    forward is MONAI's with the broadcast made rank-generic."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.nonlinearity(self.norm1(x))  # type: ignore[attr-defined]
        if self.upsample is not None:  # type: ignore[attr-defined]
            x, h = self.upsample(x), self.upsample(h)  # type: ignore[attr-defined]
        elif self.downsample is not None:  # type: ignore[attr-defined]
            x, h = self.downsample(x), self.downsample(h)  # type: ignore[attr-defined]
        h = self.conv1(h)  # type: ignore[attr-defined]
        temb = self.time_emb_proj(self.nonlinearity(emb))  # type: ignore[attr-defined]
        h = h + temb.reshape(*temb.shape, *([1] * (h.ndim - 2)))
        h = self.conv2(self.nonlinearity(self.norm2(h)))  # type: ignore[attr-defined]
        return self.skip_connection(x) + h  # type: ignore[attr-defined]


def _fix_1d_resnets(unet: nn.Module) -> None:
    from monai.networks.nets.diffusion_model_unet import DiffusionUNetResnetBlock

    for m in unet.modules():
        if type(m) is DiffusionUNetResnetBlock:
            m.__class__ = _swap_class(type(m), _ResnetBlockAnyDim)


class UNetDenoiserNet(nn.Module):
    """``net(x, t, cond=None, label=None, drop_mask=None) -> (B, C, *spatial)`` on MONAI's UNet.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: channels of ``x`` (the output has the same number unless ``out_channels``).
        channels, attention_levels, num_res_blocks, num_head_channels, norm_num_groups:
            passed to ``monai.networks.nets.DiffusionModelUNet`` (MONAI's defaults). The UNet
            downsamples ``len(channels) - 1`` times, so every spatial size must be divisible by
            ``2 ** (len(channels) - 1)``.
        cond_channels: if > 0, ``cond`` of shape ``(B, cond_channels, *spatial)`` is concatenated
            to ``x`` (zeros when absent or dropped).
        num_classes: if > 0, integer ``label`` ``(B,)`` through MONAI's class embedding, with an
            extra null class for the unconditional model.
        time_scale: MONAI's ``timesteps = time_scale * t``.
        gradient_checkpointing: recompute block activations in backward (saves memory for 3-D).
        use_flash_attention: passed to MONAI.
        out_channels: channels of the output when they differ from ``x``'s: a regression network
            ``net(c, 0)`` from a condition to a field (a denoiser keeps the default, ``in_channels``).
    """

    accepts_drop_mask: ClassVar[bool] = True

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        channels: Sequence[int] = (32, 64, 64, 64),
        attention_levels: Sequence[bool] = (False, False, True, True),
        num_res_blocks: int | Sequence[int] = 2,
        num_head_channels: int | Sequence[int] = 8,
        norm_num_groups: int = 32,
        cond_channels: int = 0,
        num_classes: int = 0,
        time_scale: float = 1000.0,
        gradient_checkpointing: bool = False,
        use_flash_attention: bool = False,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3; got {spatial_dims}")
        if len(channels) != len(attention_levels):
            raise ValueError(f"channels ({len(channels)} levels) and attention_levels ({len(attention_levels)}) "
                             "must have the same length")
        bad = [c for c in channels if c % norm_num_groups]
        if bad:
            raise ValueError(f"every entry of channels must be a multiple of norm_num_groups={norm_num_groups}; "
                             f"{bad} are not. Change channels or norm_num_groups")
        if out_channels is not None and (not isinstance(out_channels, int) or out_channels < 1):
            raise ValueError(f"out_channels must be None or an integer >= 1; got {out_channels!r}")
        self.spatial_dims, self.in_channels = spatial_dims, in_channels
        self.cond_channels, self.num_classes = cond_channels, num_classes
        self.time_scale = float(time_scale)
        self.downsample = 2 ** (len(channels) - 1)
        self.unet = DiffusionModelUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels + cond_channels,
            out_channels=in_channels if out_channels is None else int(out_channels),
            num_res_blocks=num_res_blocks,
            channels=tuple(channels),
            attention_levels=tuple(attention_levels),
            norm_num_groups=norm_num_groups,
            num_head_channels=num_head_channels,
            num_class_embeds=num_classes + 1 if num_classes > 0 else None,
            use_flash_attention=use_flash_attention,
        )
        if spatial_dims == 1:
            _fix_1d_resnets(self.unet)
        if gradient_checkpointing:
            for block in [*self.unet.down_blocks, self.unet.middle_block, *self.unet.up_blocks]:
                _enable_checkpointing(block)

    def _check_x(self, x: Tensor) -> None:
        expected = f"(B, {self.in_channels}, " + ", ".join(["S"] * self.spatial_dims) + ")"
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"a {self.spatial_dims}-D UNetDenoiserNet takes x of shape {expected}; got "
                             f"{tuple(x.shape)}. Add the channel dimension or set spatial_dims={x.ndim - 2}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels but the UNet was built with in_channels="
                             f"{self.in_channels}; set in_channels={x.shape[1]} (conditioning channels go in `cond`)")
        spatial = tuple(x.shape[2:])
        if any(s % self.downsample for s in spatial):
            levels = self.downsample.bit_length() - 1
            raise ValueError(f"spatial size {spatial} is not divisible by {self.downsample} = 2**{levels}, as the "
                             f"UNet's {levels} downsamplings need; pad or crop to a multiple of {self.downsample}, "
                             "or use fewer levels in `channels`")

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        cond: Tensor | None = None,
        label: Tensor | None = None,
        drop_mask: Tensor | None = None,
    ) -> Tensor:
        self._check_x(x)
        batch = x.shape[0]
        t = as_time(t, x)
        drop = check_drop_mask(drop_mask, batch, x.device)
        dtype = self.unet.conv_in.conv.weight.dtype
        h = x.to(dtype)
        if cond is not None and self.cond_channels == 0:
            raise ValueError("this UNetDenoiserNet takes no `cond`; build it with cond_channels > 0")
        if label is not None and self.num_classes == 0:
            raise ValueError("this UNetDenoiserNet has no classes; build it with num_classes > 0 to pass `label`")
        if self.cond_channels > 0:
            want = (batch, self.cond_channels, *x.shape[2:])
            if cond is None:
                cond = h.new_zeros(want)
            elif tuple(cond.shape) != want:
                raise ValueError(f"cond must have shape {want} (concatenated to x); got {tuple(cond.shape)}")
            cond = torch.where(drop.reshape(-1, *([1] * (x.ndim - 1))), 0.0, cond.to(dtype))
            h = torch.cat([h, cond], dim=1)
        labels = None
        if self.num_classes > 0:
            null = torch.full((batch,), self.num_classes, dtype=torch.long, device=x.device)
            labels = null if label is None else torch.where(drop, null, check_labels(label, batch, self.num_classes))
        out = self.unet(h, timesteps=self.time_scale * t.float(), class_labels=labels)
        return out.to(x.dtype)
