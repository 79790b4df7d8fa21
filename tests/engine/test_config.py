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
    cfg = load_config(tmp_path / "child.toml", ["optim.epochs=3"], validate=False)
    assert cfg["optim"]["lr"] == 0.5 and cfg["optim"]["epochs"] == 3
    assert cfg["data"] == CFG["data"]
    (tmp_path / "broken.toml").write_text("[optim\nlr=")
    with pytest.raises(ConfigError, match="broken.toml.*not valid TOML"):
        load_config(tmp_path / "broken.toml")
    with pytest.raises(ConfigError, match="unknown config 'nope/nothing'"):
        load_config("nope/nothing")


# --------------------------------------------------------------------------- validation
def _write(tmp_path, body, name="c.toml"):
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize("body, key, words", [
    ('[optim]\nlearning_rate = 0.1\n', "optim.learning_rate", "did you mean 'optim.lr'"),
    ('[data]\ncrop_snipets = 32\n', "data.crop_snipets", "did you mean 'data.crop_snippets'"),
    ('[trian]\nepochs = 2\n', "trian.epochs", "did you mean 'train.epochs'"),
    ('[model]\nhiden_channels = 8\n', "model.hiden_channels",
     "did you mean 'model.hidden_channels'"),
    ('[optim]\nlr = "fast"\n', "optim.lr", "must be a number"),
    ('[model]\nhidden_channels = "32"\n', "model.hidden_channels", "must be an integer"),
    ('[model]\nhidden_channels = 0\n', "model.hidden_channels", ">= 1"),
    ('[train]\nepochs = 2.7\n', "train.epochs", "must be an integer"),
    ('[train]\nepochs = 0\n', "train.epochs", ">= 1"),
    ('[optim]\nlr = inf\n', "optim.lr", "finite"),
    ('[optim]\nlr = -1.0\n', "optim.lr", "> 0"),
    ('[data]\nval_fraction = 1.5\n', "data.val_fraction", "(0, 1)"),
    ('[data]\nmodality = "depth"\n', "data.modality", "one of"),
    ('[data]\nfeature_pattern = "features.npy"\n', "data.feature_pattern", "{video}"),
    ('[eval]\ntiou = [0.5, 1.5]\n', "eval.tiou", "(0, 1]"),
])
def test_file_errors_name_the_file_and_key(tmp_path, body, key, words):
    path = _write(tmp_path, 'base = "ecm/synthetic"\n' + body)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert str(path) in msg and f"'{key}'" in msg and words in msg


def test_set_accepts_documented_keys_absent_from_the_file():
    cfg = load_config("ecm/synthetic", ["data.crop_snippets=64", "data.feature_stride=16",
                                        "model.detection.class_threshold=0.2",
                                        "schedule.warmup_epochs=2"])
    assert cfg["data"]["crop_snippets"] == 64
    assert cfg["data"]["feature_stride"] == 16.0 and isinstance(cfg["data"]["feature_stride"],
                                                                float)
    assert cfg["model"]["detection"] == {"class_threshold": 0.2}
    assert cfg["schedule"]["warmup_epochs"] == 2
    # a model argument of GRN is not one of ECM
    with pytest.raises(ConfigError, match="model.mu"):
        load_config("ecm/synthetic", ["model.mu=1"])
    with pytest.raises(ConfigError, match=r"--set train.epochs=2.5.*'train.epochs'"):
        load_config("ecm/synthetic", ["train.epochs=2.5"])
    with pytest.raises(ConfigError, match="did you mean 'data.crop_snippets'"):
        load_config("ecm/synthetic", ["data.crop_snipets=3"])


def test_base_chain_is_documented_and_checked(tmp_path):
    _write(tmp_path, 'base = "b.toml"\n', "a.toml")
    _write(tmp_path, 'base = "a.toml"\n', "b.toml")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.toml")
    child = _write(tmp_path, 'base = "ecm/thumos14"\n[data]\nroot = "/x"\n', "child.toml")
    cfg = load_config(child)
    assert cfg["data"]["root"] == "/x" and cfg["method"] == "ecm"


def test_method_must_be_registered(tmp_path):
    path = _write(tmp_path, 'base = "ecm/synthetic"\nmethod = "ecmm"\n')
    with pytest.raises(ConfigError, match=r"c.toml.*'method'.*did you mean 'ecm'"):
        load_config(path)
