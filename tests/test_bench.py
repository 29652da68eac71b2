"""The benchmark's reference is the documented table, literally, whatever the defaults become."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.datasets import Data
from bench.run import CONFIGS, REFERENCE, requests_for
from pipeline.settings.tuning_settings import TuningSettings
from tests.oracles import seed_table


def tiny() -> Data:
    import torch

    x = torch.zeros(40, 3, 16, 16)
    y = torch.arange(40) % 6
    return Data("tiny", (x, y), (x[:10], y[:10]), 6)


def test_the_reference_searches_the_seed_documents_table_and_nothing_else() -> None:
    (request,) = requests_for(CONFIGS[REFERENCE], tiny(), jobs=30, epochs=5)
    definition = request["TrainingJobDefinition"]
    table = seed_table()
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    numeric = {
        r["Name"]: (kind, float(r["MinValue"]), float(r["MaxValue"]), r["ScalingType"])
        for kind, key in (("Continuous", "ContinuousParameterRanges"), ("Integer", "IntegerParameterRanges"))
        for r in ranges.get(key, [])
    }
    # mini_batch_size is capped at the training set (40 images here), as the algorithm requires.
    expected = {
        name: (r.kind, r.min_value, min(r.max_value, 40) if name == "mini_batch_size" else r.max_value, "Auto")
        for name, r in table.ranges.items()
    }
    assert numeric == expected
    (optimizer,) = ranges["CategoricalParameterRanges"]
    assert (optimizer["Name"], tuple(optimizer["Values"])) == ("optimizer", table.optimizers)
    assert request["HyperParameterTuningJobConfig"]["Strategy"] == "Bayesian"
    assert "optimizer" not in definition["StaticHyperParameters"]


def test_every_configuration_names_its_preset_so_a_new_default_cannot_move_it() -> None:
    assert next(iter(CONFIGS)) == REFERENCE
    assert all("preset" in config for config in CONFIGS.values())
    for config in CONFIGS.values():  # and each is a valid set of settings
        requests_for(config, tiny(), jobs=30, epochs=5)
    assert TuningSettings.from_mapping(CONFIGS[REFERENCE], where="t").preset == "documented"


def test_the_warm_started_configuration_learns_from_the_same_seeds_previous_run(tmp_path: Path) -> None:
    from bench.datasets import DATASETS, PREVIOUS_VERSION
    from bench.run import WARM, WARM_PARENT, parent_trials

    assert PREVIOUS_VERSION["shapes-v2"] in DATASETS and WARM_PARENT[WARM] in CONFIGS
    trial = {"optimizer": "adam", "hyperparameters": {"optimizer": "adam"}, "pruned": False}
    raw = [
        {"dataset": "shapes", "config": REFERENCE, "seed": 3, "trials": [{**trial, "accuracy": 0.7, "epochs": 15}]},
        {"dataset": "shapes", "config": REFERENCE, "seed": 4, "trials": [{**trial, "accuracy": 0.4, "epochs": 15}]},
        {"dataset": "shapes-v2", "config": REFERENCE, "seed": 3, "trials": [{**trial, "accuracy": 0.5, "epochs": 15}]},
        # a job that never trained (the algorithm refused it; run_tuning_job records it pruned) taught nothing
        {
            "dataset": "shapes",
            "config": REFERENCE,
            "seed": 5,
            "trials": [{**trial, "accuracy": 0.0, "epochs": 0, "pruned": True}],
        },
    ]
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    (parent,) = parent_trials(path, "shapes-v2", WARM, 3, 15)
    assert parent.objective == 0.7 and parent.tuned == {"optimizer": "adam"}
    assert parent_trials(path, "shapes-v2", WARM, 5, 15) == []
    assert parent_trials(path, "shapes-v2", REFERENCE, 3, 15) == []  # a cold configuration has no parents
    with pytest.raises(SystemExit, match="seed 6"):
        parent_trials(path, "shapes-v2", WARM, 6, 15)
    with pytest.raises(SystemExit, match="other than 6 epochs"):  # scores of 15-epoch jobs
        parent_trials(path, "shapes-v2", WARM, 3, 6)
    (request,) = requests_for(CONFIGS[WARM], tiny(), jobs=30, epochs=5, parents=True)
    assert request["WarmStartConfig"]["WarmStartType"] == "TransferLearning"
    (cold,) = requests_for(CONFIGS[WARM], tiny(), jobs=30, epochs=5)
    assert "WarmStartConfig" not in cold
