"""Time-series anomaly detection (first part of ImDiffusion, Chen et al. 2023): metrics and baselines.

- :mod:`.metrics`: precision / recall / F1 at a validation-chosen threshold, point-adjusted
  F1 (Xu et al. 2018) and oracle-threshold F1 (both labelled as such), AUROC, AUPRC.
- :mod:`.baselines`: Isolation Forest, PCA reconstruction, ridge-forecast residual and
  linear-interpolation imputation detectors.
- :mod:`.masks`: ImDiffusion's grating and random masks, in complementary pairs.
- :mod:`.imputer`: :class:`ImputerModule` (CSDI conditional imputer / ImDiffusion's
  unconditional imputed diffusion on :class:`sciddm.nets.csdi.CSDINet`), its data module,
  :func:`train_imputer`, :func:`imputation_metrics` (CRPS, MAE of hidden entries).
- :mod:`.imdiffusion`: :class:`ImDiffusionDetector` (step-ensemble voting, windowed scoring of
  long series) and :class:`StreamingScorer` (scores points as they arrive).

Data (synthetic generator, SMD/PSM/MSL readers, windows) live in ``sciddm.datasets.timeseries``.
"""

from .baselines import (DETECTORS, REFERENCE_DETECTORS, Detector, ForecastDetector, GaussianImputationDetector,
                        InterpolationDetector, IsolationForestDetector, PCADetector)
from .imdiffusion import ImDiffusionDetector, StreamingScorer, vote_scores
from .imputer import ImputerModule, TimeSeriesDataModule, imputation_metrics, quad_betas, train_imputer
from .masks import MASK_STRATEGIES, grating_mask, grating_pair, random_mask, random_pair, training_masks
from .metrics import (
    DetectionReport,
    auprc,
    auroc,
    best_f1,
    evaluate_scores,
    point_adjust,
    precision_recall_f1,
    validation_threshold,
)

__all__ = [
    "precision_recall_f1", "point_adjust", "best_f1", "validation_threshold", "auroc", "auprc",
    "DetectionReport", "evaluate_scores", "Detector", "IsolationForestDetector", "PCADetector",
    "ForecastDetector", "InterpolationDetector", "GaussianImputationDetector", "DETECTORS",
    "REFERENCE_DETECTORS",
    "MASK_STRATEGIES", "grating_mask", "grating_pair", "random_mask", "random_pair", "training_masks",
    "ImputerModule", "TimeSeriesDataModule", "train_imputer", "imputation_metrics", "quad_betas",
    "ImDiffusionDetector", "StreamingScorer", "vote_scores",
]
