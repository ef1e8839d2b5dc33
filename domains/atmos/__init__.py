"""Atmospheric super-resolution (Chakraborty et al. 2025, "Multimodal Atmospheric
Super-Resolution With Deep Generative Models"): an unconditional diffusion prior of
high-resolution fields, conditioned zero-shot on coarse fields and sparse stations.

- :mod:`.data`: :class:`AtmosDataModule`, snapshots for training the prior (``sciddm fit``).
- :mod:`.operators`: :func:`coarse_operator`, :func:`station_operator` (lat/lon to the grid).
- :mod:`.downscale`: :func:`downscale`, the ensemble as a CF dataset, netCDF and zarr;
  :func:`build_observation`, its operator and data for any posterior sampler.
- :mod:`.baselines`: :func:`bicubic` and the CorrDiff-style :class:`CorrDiffModule`
  (:func:`corrdiff_sample`; :func:`corrdiff_posterior` adds other observations, e.g. stations).
- :mod:`.spectra`: radial power spectra; :mod:`.plots`: PNG maps and spectra.
"""

from .baselines import CorrDiffModule, bicubic, corrdiff_posterior, corrdiff_sample
from .data import AtmosDataModule
from .downscale import DEFAULT_METHOD, build_observation, downscale, ensemble_dataset, load_prior, write_ensemble
from .operators import (
    StationObservation,
    coarse_grain,
    coarse_observation,
    coarse_operator,
    sample_stations,
    station_operator,
)
from .plots import plot_downscaled, plot_spectra
from .spectra import radial_spectrum, spectrum_error

__all__ = [
    "AtmosDataModule", "coarse_grain", "coarse_operator", "coarse_observation", "station_operator",
    "StationObservation", "sample_stations", "downscale", "build_observation", "load_prior", "ensemble_dataset",
    "write_ensemble",
    "DEFAULT_METHOD", "bicubic", "CorrDiffModule", "corrdiff_sample", "corrdiff_posterior", "radial_spectrum", "spectrum_error",
    "plot_downscaled", "plot_spectra",
]
