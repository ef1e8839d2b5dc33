"""The pure parts of ``benchmarks/few_step_domains.py``: the goal bookkeeping of issue #9 and the
round snapshots of a progressive student (tiny synthetic stand-ins, no cached models)."""

from __future__ import annotations

import math
import lightning.pytorch as pl
import pytest
import torch

from benchmarks.few_step_domains import build_progressive, goal_report, progressive_student, relative_gap, student_at
from sciddm.nets import MLPDenoiserNet
from sciddm.process import VP
from sciddm.training import DiffusionModule


def test_relative_gap_signs_and_divergence() -> None:
    assert relative_gap(1.1, 1.0) == pytest.approx(0.1)
    assert relative_gap(0.9, 1.0) == pytest.approx(-0.1)  # better than the teacher: negative
    assert relative_gap(0.9, 1.0, lower_is_better=False) == pytest.approx(0.1)  # e.g. a success rate
    assert math.isnan(relative_gap(float("nan"), 1.0))


def test_goal_report_picks_the_best_row_per_goal_nfe() -> None:
    rows = [
        {"method": "teacher", "nfe": 4, "metric": 1.20},
        {"method": "student", "nfe": 4, "metric": 1.05},  # +5 %: within 10 %
        {"method": "teacher", "nfe": 1, "metric": float("nan")},  # diverged: never meets a goal
        {"method": "student", "nfe": 1, "metric": 1.30},  # +30 %: outside 25 %
        {"method": "teacher", "nfe": 64, "metric": 1.00},
    ]
    report = goal_report(rows, 1.0)
    assert report["nfe4"]["best_method"] == "student" and report["nfe4"]["status"] == "MET"
    assert report["nfe4"]["gap"] == pytest.approx(0.05)
    assert report["nfe1"]["best_method"] == "student" and report["nfe1"]["status"] == "NOT MET"
    assert [r.get("goal") for r in rows] == ["NOT MET", "MET", "NOT MET", "NOT MET", None]
    assert goal_report(rows[:2], 1.0)["nfe1"]["status"] == "no row"
    # a higher-is-better metric: 0.85 against 0.9 is 5.6 % worse
    higher = goal_report([{"method": "s", "nfe": 4, "metric": 0.85}], 0.9, lower_is_better=False)
    assert higher["nfe4"]["status"] == "MET" and higher["nfe4"]["gap"] == pytest.approx(0.05 / 0.9)


def _teacher() -> DiffusionModule:
    torch.manual_seed(0)
    return DiffusionModule(MLPDenoiserNet(dim=2, width=16, depth=2), VP(), prediction="v", val_num_samples=0,
                           data_shape=[2]).eval()


def test_progressive_snapshots_are_the_student_at_the_end_of_each_round(tmp_path) -> None:
    torch.set_num_threads(1)
    teacher = _teacher()
    data = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    cfg = dict(start_steps=4, round_steps=3, base_grid="uniform", lr=1e-3, batch=8, seed=0)
    saved = progressive_student(teacher, data, cache=tmp_path / "s.pt", **cfg)
    assert sorted(saved["states"]) == [1, 2]
    template = build_progressive(teacher, start_steps=4, round_steps=3, base_grid="uniform", lr=1e-3, seed=0,
                                 data_shape=[2])
    base = torch.linspace(1.0, 0.0, 5, dtype=torch.float64)
    for steps, stride in ((2, 2), (1, 4)):
        _, grid = student_at(template, saved["states"][steps])
        torch.testing.assert_close(grid, base[::stride])

    # the 2-step snapshot is exactly the student after round 1 alone (3 optimiser steps), not a later state
    alone = build_progressive(teacher, start_steps=4, round_steps=3, base_grid="uniform", lr=1e-3, seed=0,
                              data_shape=[2])
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    pl.seed_everything(0, verbose=False)
    pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, accelerator="cpu", devices=1).fit(alone, loader)
    for k, v in alone.state_dict().items():
        torch.testing.assert_close(saved["states"][2][k], v, rtol=0, atol=0, msg=k)
    w = "denoiser.net." + next(n for n, _ in teacher.denoiser.net.named_parameters())
    assert not torch.equal(saved["states"][1][w], saved["states"][2][w])  # round 2 trained on

    # the cache is read back as written; other settings retrain
    again = progressive_student(teacher, data, cache=tmp_path / "s.pt", **cfg)
    assert again["train_s"] == saved["train_s"]
    other = progressive_student(teacher, data, cache=tmp_path / "s.pt", **{**cfg, "lr": 2e-3})
    assert other["config"]["lr"] == 2e-3 and not torch.equal(other["states"][1][w], saved["states"][1][w])


def test_atmos_domain_without_its_cached_prior_says_how_to_make_it(capsys) -> None:
    import argparse

    from benchmarks.few_step_domains import atmos_domain

    out = atmos_domain(argparse.Namespace(atmos_prior="prior64_not_trained"))
    assert out["skipped"].startswith("missing") and "prior64_not_trained" in out["skipped"]
    assert "--resolution 64 --prior prior64_not_trained" in capsys.readouterr().out


def test_record_row_averages_cases_and_keeps_a_custom_grid() -> None:
    from benchmarks.few_step_domains import record_row

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

        def set_postfix_str(self, s):
            self.last = s

    rows: list = []
    bar = Bar()
    record_row(rows, bar, "teacher", 4, [0.2, 0.4], [2.0, 4.0], 10, {"grid": torch.tensor([1.0, 0.5, 0.0])}, "per_case")
    record_row(rows, bar, "teacher", 8, [0.1], [1.0], 5, {"grid": "time", "zeta": 8.0}, "per_time")
    assert rows[0] == {"method": "teacher", "nfe": 4, "metric": pytest.approx(0.3), "per_case": [0.2, 0.4],
                       "wall_s_per_sample": pytest.approx(0.3), "grid": [1.0, 0.5, 0.0]}
    assert rows[1] == {"method": "teacher", "nfe": 8, "metric": pytest.approx(0.1), "per_time": [0.1],
                       "wall_s_per_sample": pytest.approx(0.2)}
    assert bar.n == 2 and bar.last == "teacher 8"


def test_progressive_student_of_a_conditional_teacher_passes_each_rows_cond(tmp_path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    teacher = DiffusionModule(MLPDenoiserNet(dim=2, width=16, depth=2, cond_dim=3), VP(), prediction="v",
                              val_num_samples=0, data_shape=[2]).eval()
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(32, 2, generator=g), torch.randn(32, 3, generator=g)
    cfg = dict(start_steps=2, round_steps=2, base_grid="uniform", lr=1e-3, batch=8, seed=0, cache=None)
    a = progressive_student(teacher, {"x": x, "cond": c}, **cfg)
    b = progressive_student(teacher, {"x": x, "cond": -c}, **cfg)
    assert a["config"]["examples"] == 32 and sorted(a["states"]) == [1]
    w = "denoiser.net.inp.weight"
    assert not torch.equal(a["states"][1][w], b["states"][1][w])  # the condition changed the distillation targets

    # an unconditional teacher given a condition fails inside its network: the rows' cond reached it
    with pytest.raises(ValueError, match="unconditional"):
        progressive_student(_teacher(), {"x": x, "cond": c}, **cfg)
    with pytest.raises(ValueError, match="one length"):
        progressive_student(teacher, {"x": x, "cond": c[:5]}, **cfg)


def test_corrdiff_domain_without_its_cached_model_says_how_to_make_it(capsys) -> None:
    import argparse

    from benchmarks.few_step_domains import corrdiff_domain

    out = corrdiff_domain(argparse.Namespace(corrdiff_model="corrdiff_not_trained"))
    assert out["skipped"].startswith("missing") and "corrdiff_not_trained" in out["skipped"]
    assert "CorrDiff skipped" in capsys.readouterr().out


def test_timeseries_domain_without_the_long_run_network_says_how_to_make_it(capsys, monkeypatch, tmp_path) -> None:
    import argparse

    import benchmarks.few_step_domains as fsd

    monkeypatch.setattr(fsd, "TS_NETWORK", tmp_path / "none.pt")
    out = fsd.timeseries_domain(argparse.Namespace())
    assert out["skipped"].startswith("missing")
    assert "timeseries_learning_curve" in capsys.readouterr().out


def test_plot_cuts_a_diverged_row_instead_of_a_log_axis() -> None:
    from benchmarks.few_step_domains import plot

    rows = [{"method": "teacher", "nfe": 1, "metric": 100.0}, {"method": "teacher", "nfe": 4, "metric": 1.05},
            {"method": "teacher", "nfe": 16, "metric": 1.0}]
    result = {"domains": {"pde": {"rows": rows, "full": {"metric": 1.0}, "reference": {"metric": 1.2}}}}
    ax = plot(result).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[1] == pytest.approx(2.0)
    marks = [ln for ln in ax.lines if ln.get_marker() == "^"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [1]  # only the diverged point, on the edge


def test_update_keeps_the_other_domains_and_their_provenance(tmp_path, monkeypatch) -> None:
    """--update re-runs one domain: the others, the runs they were merged from and earlier updates stay."""
    import json

    import benchmarks.few_step_domains as fsd

    out = tmp_path / "fs.json"
    kept = {"full": {"metric": 1.0}, "rows": [{"method": "m", "nfe": 1, "metric": 1.0}]}
    out.write_text(json.dumps({"domains": {"mri": kept}, "merged_from": [{"file": "mri2.json"}],
                               "updates": [{"domains": "atmos", "date": "earlier"}]}))
    monkeypatch.setattr(fsd, "pde_domain", lambda args: {"full": {"metric": 2.0}, "rows": []})
    monkeypatch.setattr(fsd, "save_figure", lambda fig, path: None)
    monkeypatch.setattr(fsd, "plot", lambda result: None)
    fsd.main(["--domains", "pde", "--update", "--out", str(out)])
    stored = json.loads(out.read_text())
    assert stored["domains"]["mri"] == kept and stored["domains"]["pde"]["full"]["metric"] == 2.0
    assert stored["merged_from"] == [{"file": "mri2.json"}]
    assert [u["domains"] for u in stored["updates"]] == ["atmos", "pde"]


@pytest.mark.parametrize("domain, model_key, cases_key, flag, name", [
    ("pde64_domain", "pde64_prior", "pde64_cases", "--pde64-cases", "darcy64_large"),
    ("pde_cond_domain", "pde_cond_model", "pde_cond_cases", "--pde-cond-cases", "darcy32_cond"),
])
def test_a_pde_domain_refuses_bad_case_counts_and_without_its_model_says_how_to_make_it(
        domain, model_key, cases_key, flag, name, capsys) -> None:
    import argparse

    import benchmarks.few_step_domains as fsd

    run = getattr(fsd, domain)
    for cases in (0, 17):
        with pytest.raises(ValueError, match=f"{flag} {cases}: the test store has 16 pairs"):
            run(argparse.Namespace(**{model_key: name, cases_key: cases}))
    missing = f"{name}_not_trained"
    out = run(argparse.Namespace(**{model_key: missing, cases_key: 4}))
    assert out["skipped"].startswith("no checkpoint") and missing in out["skipped"]
    assert f"experiments/pde/{missing}.yaml" in capsys.readouterr().out


def test_markdown_adds_the_crps_table_and_verdicts_of_a_domain_that_has_them() -> None:
    from benchmarks.few_step_domains import goal_report, markdown

    rows = [{"method": "teacher Heun", "nfe": 35, "metric": 0.20, "crps": 0.10, "wall_s_per_sample": 0.1},
            {"method": "teacher Euler", "nfe": 4, "metric": 0.21, "crps": 0.13, "wall_s_per_sample": 0.01},
            {"method": "teacher Euler", "nfe": 1, "metric": 0.20, "crps": 0.20, "wall_s_per_sample": 0.003}]
    goals = goal_report(rows, 0.20)
    crps_goals = goal_report([{**r, "metric": r["crps"]} for r in rows], 0.10)
    text = markdown({"domains": {"pde_cond": {"title": "Darcy cond", "rows": rows, "goals": goals,
                                              "crps_goals": crps_goals, "full": {"metric": 0.20, "crps": 0.10}}}})
    assert "#### Darcy cond" in text and "Fair CRPS of u" in text
    # the mean-error goals are met at 4 and 1 NFE (+5 %, 0 %); the CRPS ones are not (+30 %, +100 %)
    assert "- goal nfe4: best teacher Euler 0.2100 (+5.0 % vs allowed 10 %): **MET**" in text
    assert "- CRPS goal nfe4: best teacher Euler 0.1300 (+30.0 % vs allowed 10 %): **NOT MET**" in text
    assert "- CRPS goal nfe1: best teacher Euler 0.2000 (+100.0 % vs allowed 25 %): **NOT MET**" in text


def test_a_domain_with_crps_gets_a_second_panel_drawn_from_its_crps() -> None:
    from benchmarks.few_step_domains import _panels

    rows = [{"method": "teacher Heun", "nfe": 35, "metric": 0.20, "crps": 0.10},
            {"method": "teacher Euler", "nfe": 1, "metric": 0.21, "crps": 0.15}]
    panels = _panels({"domains": {"pde_cond": {"title": "Darcy cond", "rows": rows,
                                               "full": {"metric": 0.20, "crps": 0.10}}}})
    assert [p[0] for p in panels] == ["Darcy cond", "Darcy cond: CRPS of u"]
    assert [r["metric"] for r in panels[1][2]] == [0.10, 0.15] and panels[1][3] == 0.10
