"""Lightning training: the :class:`DiffusionModule` (and :class:`ResidualDiffusionModule`), data modules,
checkpoint loading."""

from .autoencoder import AutoencoderModule, load_autoencoder
from .checkpoint import SAMPLE_FORMATS, load_model, write_samples
from .data import DiffusionDataModule, ResumableDataLoader, EpochSeededSampler, GaussianMixtureDataModule, derive_seed, toy_mixture
from .module import DiffusionModule, unpack_batch
from .residual import ResidualDiffusionModule

__all__ = [
    "DiffusionModule",
    "ResidualDiffusionModule",
    "DiffusionDataModule",
    "GaussianMixtureDataModule",
    "EpochSeededSampler",
    "ResumableDataLoader",
    "toy_mixture",
    "derive_seed",
    "unpack_batch",
    "load_model",
    "write_samples",
    "SAMPLE_FORMATS",
    "AutoencoderModule",
    "load_autoencoder",
]
