"""The observation masks pick exactly the requested points; bad observations are refused."""

import pytest
import torch

from sciddm.domains.pde.data import FieldStats
from sciddm.domains.pde.operators import FieldObservation, observation_mask, observe, point_mask, points_to_mask, sensor_mask


def test_point_mask_density_and_uniqueness() -> None:
    g = torch.Generator().manual_seed(0)
    m = point_mask(128, 0.03, generator=g)
    assert m.shape == (128, 128) and set(m.unique().tolist()) == {0.0, 1.0}
    assert int(m.sum()) == round(0.03 * 128 * 128)  # 492, DiffusionPDE's 500 is 3.05%
    assert int(point_mask(128, count=500, generator=g).sum()) == 500
    m2 = point_mask(128, 0.03, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m, m2)  # reproducible


def test_observation_picks_exactly_the_observed_points() -> None:
    g = torch.Generator().manual_seed(1)
    fields = torch.randn(2, 16, 16, dtype=torch.float64, generator=g)
    mask = observation_mask(16, ("a", "u"), 0.1, generator=g)
    assert mask.sum(dim=(1, 2)).tolist() == [26.0, 26.0]
    assert not torch.equal(mask[0], mask[1])  # independent draws per field
    obs = observe(fields, mask)
    assert torch.equal(obs.values[mask == 1], fields[mask == 1]) and (obs.values[mask == 0] == 0).all()
    stats = FieldStats((1.0, -2.0), (2.0, 0.5))
    op, y = obs.operator(stats, sigma_y=0.01)
    z = stats.normalize(fields)[None]
    assert torch.allclose(op.forward(z), y)  # the core Mask in model units reproduces the observation
    known = observation_mask(8, ("u",), 0.05, known=("a",), generator=g)
    assert known[0].sum() == 64 and known[1].sum() == round(0.05 * 64)


def test_any_pattern() -> None:
    m = points_to_mask([[0, 0], [3, 7], [7, 7]], 8)
    assert m.sum() == 3 and m[3, 7] == 1 and m[7, 0] == 0


def test_sensor_mask_observes_whole_rows() -> None:
    m = sensor_mask(16, 5, generator=torch.Generator().manual_seed(3))
    rows = m.sum(dim=1)
    assert sorted(set(rows.tolist())) == [0.0, 16.0] and int((rows == 16).sum()) == 5  # 5 positions x, every t
    assert torch.equal(m, sensor_mask(16, 5, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="sensors on 16 positions"):
        sensor_mask(16, 17)
    with pytest.raises(ValueError, match="sensors on 16 positions"):
        sensor_mask(16, 0)


def test_bad_observations() -> None:
    with pytest.raises(ValueError, match="outside the 8x8 grid"):
        points_to_mask([[0, 8]], 8)
    with pytest.raises(ValueError, match="no observed point"):
        FieldObservation(torch.zeros(2, 8, 8), torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"expected \(2, n, n\)"):
        FieldObservation(torch.ones(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="must both be"):  # fields of the wrong shape
        observe(torch.zeros(2, 8, 8), torch.ones(2, 16, 16))
    with pytest.raises(ValueError, match="must have the mask's shape"):
        FieldObservation(torch.ones(2, 8, 8), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="outside the 8x8 grid"):
        points_to_mask([[-1, 3]], 8)
    with pytest.raises(ValueError, match="unknown field"):
        observation_mask(8, ("p",))
    with pytest.raises(ValueError, match="density"):
        point_mask(8, 0.0)
    with pytest.raises(ValueError, match="observed points requested"):
        point_mask(8, count=65)
