"""Layering: the score and the shared statistics / word lists are bottom-level modules (no import cycles)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def loaded_modules(module: str) -> list[str]:
    """gdo_utils modules in sys.modules after importing `module` in a fresh interpreter."""
    code = (f"import json, sys; import {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('gdo_utils'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def test_score_loads_no_descriptors_subsets_or_toyworld_module():
    mods = loaded_modules("gdo_utils.score")
    bad = [m for m in mods if m.startswith(("gdo_utils.descriptors", "gdo_utils.subsets", "gdo_utils.toyworld"))]
    assert bad == [], bad
    assert "gdo_utils.stats" in mods


@pytest.mark.parametrize("module", ["gdo_utils.stats", "gdo_utils.words", "gdo_utils.binomial", "gdo_utils.imageprep"])
def test_shared_helpers_are_bottom_level(module):
    assert loaded_modules(module) == ["gdo_utils", module]


def test_one_temporal_word_list():
    from gdo_utils.descriptors import temporal
    from gdo_utils.subsets import strata
    from gdo_utils import words

    assert temporal.TEMPORAL_WORDS is words.TEMPORAL_WORDS
    assert not hasattr(strata, "TEMPORAL_WORDS") and not hasattr(strata, "TEMPORAL_RE")
    for path in (REPO / "gdo_utils").rglob("*.py"):       # the list is spelled out once
        if path.name != "words.py":
            assert '"earlier", "transition"' not in path.read_text(), path


def test_temporal_mask_answers_as_python_re_for_every_row():
    import pandas as pd

    from gdo_utils.words import has_temporal_word, temporal_mask

    q = pd.Series(["What happens first?", "Then, what", "thenceforth", None, "happens", "firſt thing",
                   "é then", "éthen", "BEFORE"])
    # ASCII rows through Arrow, non-ASCII rows through Python re ("ſ" folds to "s"; "é" is a word character)
    expected = [True, True, False, False, False, True, True, False, True]
    assert temporal_mask(q).tolist() == expected
    assert [has_temporal_word(x) for x in q] == expected
