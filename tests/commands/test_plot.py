"""``tagraph plot --help``: the examples name files and videos that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tagraph.commands.demo import SIZES
from tagraph.commands.plot import EPILOG

REPO = Path(__file__).resolve().parents[2]


def test_plot_help_examples_are_real():
    videos = re.findall(r"--video (\S+)", EPILOG)
    assert len(videos) == 3
    # the demo's synthetic test videos ('small' size: ids num_train .. num_train + num_test - 1)
    size = SIZES["small"]["synthetic"]
    for vid in videos[:2]:
        m = re.fullmatch(r"synthetic_test_(\d{7})", vid)
        assert m and size["num_train"] <= int(m[1]) < size["num_train"] + size["num_test"]
    assert "demo_small/raw/synthetic-*/annotations.json" in EPILOG  # the demo's data cache
    for path in re.findall(r"(tagraph_demo/\S+)", EPILOG):
        assert path.split("/")[1] in ("pgcn", "ecm")  # the demo's default methods
        assert path.split("/")[2] in ("results_test.json", "best.pt")
    # the shipped example files
    for path in re.findall(r"(examples/\S+\.json)", EPILOG):
        assert (REPO / path).is_file(), path
    gt = json.loads((REPO / "examples/data/example_gt.json").read_text())["database"]
    results = json.loads((REPO / "examples/data/example_results.json").read_text())["results"]
    assert videos[2] in gt and videos[2] in results
