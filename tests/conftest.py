from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "Set5" / "HR").is_dir():
        pytest.skip(
            f"benchmark data not found at {DATA_ROOT} (the shared data folder beside the checkout)"
        )
    return DATA_ROOT


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests use tiny networks: one intra-op thread is faster than several on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
