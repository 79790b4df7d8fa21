import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_example_data_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_example_data", REPO / "examples" / "make_example_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path)
    for name in ("example_gt.json", "example_results.json"):
        assert (tmp_path / name).read_bytes() == (REPO / "examples" / "data" / name).read_bytes()
