import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _row(name, variant, seed, avg):
    return dict(name=name, variant=variant, seed=seed, avg=avg, positive_without=0, epochs=20,
                train_s=1.0, train_videos_per_s=1.0, infer_videos_per_s=1.0, first_loss=1.0,
                last_loss=0.5)


def test_wtal_table_difference_to_mil():
    mod = _load("wtal_table")
    rng = np.random.default_rng(0)
    mil = rng.uniform(0.2, 0.4, 5)
    grn = mil[:4] + rng.uniform(-0.01, 0.08, 4)  # unequal seed counts
    d, se = mod.mil_difference(list(100 * grn), list(100 * mil))
    ref_se = np.sqrt(np.var(100 * grn, ddof=1) / 4 + np.var(100 * mil, ddof=1) / 5)
    assert d == pytest.approx(100 * (grn.mean() - mil.mean()))
    assert se == pytest.approx(ref_se)
    assert mod.mil_difference([30.0], [20.0, 22.0]) == (pytest.approx(9.0), None)

    rows = [_row("mil", "a", s, float(v)) for s, v in enumerate(mil)]
    rows += [_row("grn", "a", s, float(v)) for s, v in enumerate(grn)]
    # far above MIL on "b", far below on "c", level on "d"
    for s in range(3):
        rows += [_row("mil", v, s, 0.3 + 0.01 * s) for v in "bcd"]
        rows += [_row("grn", "b", s, 0.5 + 0.01 * s), _row("grn", "c", s, 0.1 + 0.01 * s),
                 _row("grn", "d", s, 0.3 + 0.01 * (2 - s))]
    text = mod.summarize(rows)
    line = next(x for x in text.splitlines()
                if x.startswith("| grn |") and "±" in x and "<" in x)
    cells = [c.strip() for c in line.split("|")[2:-1]]
    assert cells[0] == f"{100 * (grn.mean() - mil.mean()):+.1f} ± {ref_se:.1f}" + (
        " >" if 100 * (grn.mean() - mil.mean()) > 2 * ref_se else "")
    assert cells[1].endswith(" >") and cells[1].startswith("+20.0")
    assert cells[2].endswith(" <") and cells[2].startswith("-20.0")
    assert cells[3] == "+0.0 ± 0.8"
