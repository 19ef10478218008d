"""What every formula test of a site page needs: that the page still states the checked text,
and a comparison whose message names the formula."""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def page_states(page: str, text: str) -> None:
    """``page`` (e.g. "docs/modern.md") shows ``text``, character for character; a line break
    counts as a space, so a formula may be re-wrapped but not edited without its check."""
    content = " ".join((ROOT / page).read_text(encoding="utf-8").split())
    assert " ".join(text.split()) in content, f"{page}: the checked formula or text is no longer on the page: {text}"


def close(actual, expected, what: str, rtol=1e-10, atol=1e-12) -> None:
    """``actual`` equals ``expected`` (arrays or tensors) to the tolerances; the message names ``what``."""
    actual, expected = (np.asarray(v.detach() if hasattr(v, "detach") else v, dtype=float) for v in (actual, expected))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert np.allclose(actual, expected, rtol=rtol, atol=atol), (
        f"{what}: max difference {np.max(np.abs(actual - expected)):.3g}"
    )
