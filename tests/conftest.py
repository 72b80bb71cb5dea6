from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "Set5" / "HR").is_dir():
        pytest.skip(
            f"benchmark data not found at {DATA_ROOT} (the shared data folder beside the checkout)"
        )
    return DATA_ROOT
