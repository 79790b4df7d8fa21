import pytest

from tagraph.engine.config import (
    ConfigError,
    apply_overrides,
    config_diff,
    dumps_toml,
    load_config,
    tomllib,
)

CFG = {
    "method": "pgcn",
    "optim": {"lr": 0.01, "epochs": 30, "milestones": [15, 30], "nesterov": False},
    "data": {"root": "data/thumos14", "modality": "both", "graph": {"knn": 0}},
}


def test_overrides_parse_types():
    out = apply_overrides(
        CFG,
        ["optim.lr=1e-3", "optim.epochs=5", "optim.milestones=[2, 4]", "optim.nesterov=true",
         "data.modality=rgb", "data.graph.knn=10"],
    )
    assert out["optim"] == {"lr": 1e-3, "epochs": 5, "milestones": [2, 4], "nesterov": True}
    assert out["data"]["modality"] == "rgb" and out["data"]["graph"]["knn"] == 10
    assert CFG["optim"]["lr"] == 0.01  # input untouched
    assert apply_overrides(CFG, ["optim.lr=1"])["optim"]["lr"] == 1.0


def test_bad_override_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown config key 'optim.lrr'.*optim.lr"):
        apply_overrides(CFG, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(CFG, ["optim.lr"])
    with pytest.raises(ConfigError, match="expects int"):
        apply_overrides(CFG, ["optim.epochs=[1]"])
    with pytest.raises(ConfigError, match="table"):
        apply_overrides(CFG, ["optim=3"])


def test_dump_round_trip_and_diff(tmp_path):
    text = dumps_toml(CFG)
    assert tomllib.loads(text) == CFG
    other = apply_overrides(CFG, ["optim.lr=0.5", "data.graph.knn=3"])
    assert config_diff(CFG, other) == ["data.graph.knn", "optim.lr"]


def test_load_with_base_and_errors(tmp_path):
    (tmp_path / "base.toml").write_text(dumps_toml(CFG))
    (tmp_path / "child.toml").write_text('base = "base.toml"\n[optim]\nlr = 0.5\n')
    cfg = load_config(tmp_path / "child.toml", ["optim.epochs=3"])
    assert cfg["optim"]["lr"] == 0.5 and cfg["optim"]["epochs"] == 3
    assert cfg["data"] == CFG["data"]
    (tmp_path / "broken.toml").write_text("[optim\nlr=")
    with pytest.raises(ConfigError, match="broken.toml.*not valid TOML"):
        load_config(tmp_path / "broken.toml")
    with pytest.raises(ConfigError, match="unknown config 'nope/nothing'"):
        load_config("nope/nothing")
