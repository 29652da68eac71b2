"""The mutation report's estimate for mutants a run did not reach: a random sample's kill rate and
its Wilson interval, and a draw that never picks a mutant already judged."""

from __future__ import annotations

import pytest

from tests import mutation_report
from tests.mutation_report import draw, estimate, wilson


def test_the_wilson_interval_is_the_textbook_one() -> None:
    # Worked by hand from Wilson (1927), z = 1.6449 (two-sided 90%): 81 of 100 killed gives
    # centre (0.81 + z²/200) / (1 + z²/100) = 0.8018 and half-width 0.0642.
    low, high = wilson(81, 100)
    assert (round(low, 3), round(high, 3)) == (0.738, 0.866)
    # With none killed the upper bound has a closed form, z² / (n + z²).
    assert wilson(0, 10) == (0.0, pytest.approx(1.6449**2 / (10 + 1.6449**2)))
    assert wilson(10, 10)[1] == 1.0


def test_the_draw_takes_only_mutants_not_run_and_is_the_same_every_time() -> None:
    status = {f"pipeline.dataset.validation.x_f__mutmut_{i}": "not checked" for i in range(50)}
    status.update({f"pipeline.dataset.validation.x_g__mutmut_{i}": "killed" for i in range(50)})
    status["pipeline.dataset.lst.x_h__mutmut_1"] = "not checked"
    sample = draw(10, "pipeline.dataset.validation.*", status)
    assert len(sample) == len(set(sample)) == 10
    assert all(status[name] == "not checked" and ".validation." in name for name in sample)
    assert draw(10, "pipeline.dataset.validation.*", status) == sample
    assert len(draw(500, "pipeline.dataset.validation.*", status)) == 50  # no more than there are


def test_mutants_run_on_purpose_are_measured_and_left_out_of_the_samples_rate(tmp_path, monkeypatch) -> None:
    # 10 mutants: 2 targeted survivors (measured), a sample of 4 others, all killed, and 4 not run.
    # Measured: 0 of 2 targeted + 4 of 4 sampled killed; the 4 not run at the sample's rate 4/4:
    # (4 + 1.0 x 4) / 10 = 80.0%. Counting the targeted in the rate (4/6) would give 66.7%.
    names = [f"p.x__mutmut_{i}" for i in range(10)]
    status = {n: "not checked" for n in names}
    status.update({names[0]: "survived", names[1]: "survived"})
    status.update({n: "killed" for n in names[2:6]})
    sample = tmp_path / "sample.txt"
    sample.write_text("\n".join(names[:6]))
    monkeypatch.setattr(mutation_report, "SAMPLE", sample)
    low = 4 / (4 + 1.6449**2)  # Wilson's lower bound for 4 of 4
    assert estimate(names, status, {}, frozenset(names[:2])) == (
        f"80.0% (90%: {(4 + low * 4) / 10:.1%}–80.0%; 4 not run, sample 4/4 killed)"
    )
    assert estimate(names, status, {}).startswith("66.7%")
