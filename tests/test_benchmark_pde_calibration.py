"""benchmarks.pde_calibration: post-hoc calibration of the conditional PDE model's intervals."""

from __future__ import annotations

import pytest
import torch

from benchmarks import pde_calibration as cal
from sciddm import VE
from sciddm.domains.pde import FieldStats
from sciddm.domains.pde.conditional import ConditionalPDEModule
from sciddm.nets import UNetDenoiserNet


def tiny_model() -> ConditionalPDEModule:
    def net(in_ch: int, cond: int = 0, out: int | None = None) -> UNetDenoiserNet:
        return UNetDenoiserNet(2, in_ch, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1,
                               norm_num_groups=4, cond_channels=cond, out_channels=out)

    torch.manual_seed(0)
    return ConditionalPDEModule(net(2, cond=4), net(4, out=2), VE(sigma_max=80.0), density=0.05, prediction="x0",
                                preconditioning="edm", sample_solver="euler", sample_steps=2, data_shape=[2, 16, 16])


def pairs(count: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.where(torch.rand(count, 16, 16, generator=g) > 0.5, 12.0, 3.0)
    u = 0.01 + 0.005 * torch.randn(count, 16, 16, generator=g)
    return torch.stack([a, u], 1).double()


def test_calibrate_reaches_the_level_in_sample_and_pools_the_test_cases(tmp_path) -> None:
    stats = FieldStats(mean=(7.0, 0.01), std=(4.0, 0.005))
    result = cal.calibrate(tiny_model(), stats, pairs(3, 0), pairs(2, 1), "darcy", ["forward", "inverse"],
                           density=0.05, members=5, log=lambda *_: None)
    for problem in ("forward", "inverse"):
        val = result["validation"][problem]["coverage90"]
        assert val["coverage"] >= 0.9  # the smallest factor reaching 90 % on the pairs it was fitted on
        assert val["raw"] < 0.9  # an untrained model's spread is far off, so the fit had something to do
        rows = [r for r in result["rows"] if r["problem"] == problem]
        assert len(rows) == 2
        rel = result["reliability"][problem]
        i90 = rel["levels"].index(0.9)
        for variant in ("raw", *cal.OBJECTIVES):  # equal-sized cases: the pooled coverage is the mean of the cases'
            assert rel[variant][i90] == pytest.approx(sum(r[variant]["coverage90"] for r in rows) / 2, abs=1e-12)
        assert result["summary"][problem]["raw/coverage90"] == pytest.approx(rel["raw"][i90], abs=1e-12)
    path = cal.plot_reliability(result, tmp_path / "rel.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inflate_scales_each_field_by_its_own_factor() -> None:
    samples = torch.randn(6, 2, 4, 4, dtype=torch.float64)
    out = cal.inflate(samples, {"a": 2.0, "u": 0.5})
    torch.testing.assert_close(out.mean(0), samples.mean(0))
    torch.testing.assert_close(out[:, 0].std(0), 2.0 * samples[:, 0].std(0))
    torch.testing.assert_close(out[:, 1].std(0), 0.5 * samples[:, 1].std(0))


@pytest.mark.parametrize("argv,message", [
    (["--model", "x", "--cases", "17"], "16 pairs"),
    (["--model", "x", "--members", "2"], "at least 3"),
    (["--model", "no_such_model_here"], "no model under"),
])
def test_bad_arguments_are_refused(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cal.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_checkpoint_needs_its_run_config(tmp_path, capsys) -> None:
    ckpt = tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    (tmp_path / "run" / "normalization.json").write_text("{}")
    with pytest.raises(SystemExit):
        cal.main(["--model", str(ckpt)])
    assert "no config.yaml in a directory above it" in capsys.readouterr().err
