"""Uncertainty maps of a PDE ensemble answer: truth, ensemble mean, |error| and ensemble std per field."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from sciddm.io import save_figure

from .operators import FieldObservation
from .solve import PDESolution

__all__ = ["plot_solution"]


def plot_solution(truth: Tensor, solution: PDESolution, observation: FieldObservation,
                  path: str | os.PathLike[str], title: str = "", names: tuple[str, str] = ("a", "u")) -> Path:
    """A 2 x 4 PNG (rows a, u, labelled ``names``; columns truth with observed points, mean,
    |mean - truth|, std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if truth.shape != solution.mean.shape:
        raise ValueError(f"truth {tuple(truth.shape)} and the solution's fields {tuple(solution.mean.shape)} differ")
    fig, axes = plt.subplots(2, 4, figsize=(12, 6), constrained_layout=True)
    for row, name in enumerate(names):
        t, m, s = truth[row].cpu(), solution.mean[row].cpu(), solution.std[row].cpu()
        panels = ((t, f"{name} truth (x: observed)"), (m, f"{name} ensemble mean"),
                  ((m - t).abs(), f"|{name} error|"), (s, f"{name} ensemble std"))
        for col, (img, label) in enumerate(panels):
            ax = axes[row, col]
            im = ax.imshow(img.numpy(), origin="lower", cmap="viridis")
            ax.set_title(label, fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8)
        ys, xs = observation.mask[row].nonzero(as_tuple=True)
        if 0 < len(xs) < observation.mask[row].numel():
            axes[row, 0].scatter(xs.numpy(), ys.numpy(), marker="x", s=12, c="red")
    fig.suptitle(title)
    return save_figure(fig, path)
