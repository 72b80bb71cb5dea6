"""The code blocks of docs/api.md, docs/extending.md and docs/inference.md run as written.

Each page's fenced ``python`` and ``bash`` blocks run in order (:mod:`tests.docs_runner`) in a
folder that stands for a fresh clone: ``configs/`` and ``examples/`` as in the repository, no
``../shared`` data beside it, ``facd`` on the PATH as this checkout's command. The pages use the
teacher shipped with facd (``facd-asset:...``) and images they make themselves.

A block that is not meant to run is preceded by the line ``<!-- no-run: REASON -->`` (an HTML
comment, invisible on the rendered page); :data:`NO_RUN_ALLOWED` keeps those few.

``docs/index.md`` links every page of ``docs/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
RUN_LANGS = ("python", "bash")
NO_RUN = re.compile(r"^<!-- no-run: (.+) -->$")
#: Blocks each page may mark ``no-run``: the excerpts of examples/my_method.py (the page's last
#: python block imports the whole module) and the DDP loop (needs torchrun's process group).
NO_RUN_ALLOWED = {"api.md": 1, "extending.md": 3, "inference.md": 0}


def code_blocks(page: str) -> list[dict]:
    """Every fenced block of ``docs/PAGE``: lang, code, 1-based line, and the no-run reason."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    blocks: list[dict] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = [ln for ln in lines[:i] if ln.strip()]
        marker = NO_RUN.match(before[-1]) if before else None
        blocks.append(
            {
                "lang": fence.group(1),
                "code": "\n".join(lines[i + 1 : end]) + "\n",
                "line": i + 1,
                "page": f"docs/{page}",
                "no_run": marker.group(1) if marker else None,
            }
        )
        i = end + 1
    return blocks


def _clone(root: Path) -> dict[str, str]:
    """A folder like a fresh clone, and the environment to run its docs in."""
    for name in ("configs", "examples"):
        (root / name).symlink_to(REPO / name)
    assert not (root.parent / "shared").exists()
    bin_dir = root / ".bin"
    bin_dir.mkdir()
    facd = bin_dir / "facd"
    src = REPO / "src"
    facd.write_text(
        "#!/bin/sh\n"
        f'exec "{sys.executable}" -c "import sys; sys.path.insert(0, {str(src)!r}); '
        'from facd.cli import main; sys.exit(main())" "$@"\n'
    )
    facd.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    env["FACD_CACHE"] = str(root / ".cache")
    env["MPLBACKEND"] = "Agg"
    env["OMP_NUM_THREADS"] = "1"  # tiny networks: one thread is faster than several competing
    return env


@pytest.mark.parametrize("page", sorted(NO_RUN_ALLOWED))
def test_page_runs_as_written(page: str, tmp_path: Path) -> None:
    blocks = code_blocks(page)
    assert blocks, f"docs/{page} has no code blocks"
    marked = [b for b in blocks if b["no_run"]]
    assert len(marked) == NO_RUN_ALLOWED[page], [b["line"] for b in marked]
    unknown = [b for b in blocks if b["lang"] not in (*RUN_LANGS, "text", "yaml")]
    assert not unknown, f"blocks without a known language: {[b['line'] for b in unknown]}"
    run = [b for b in blocks if b["lang"] in RUN_LANGS and not b["no_run"]]
    root = tmp_path / "clone"
    root.mkdir()
    env = _clone(root)
    spec = root / ".blocks.json"
    spec.write_text(json.dumps(run))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("docs_runner.py")), str(spec)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-6000:])


def test_code_blocks_and_markers_are_found() -> None:
    blocks = code_blocks("api.md")
    assert [b["lang"] for b in blocks[:2]] == ["python", "python"]
    ddp = [b for b in blocks if b["no_run"]]
    assert len(ddp) == 1 and "DistributedDataParallel" in ddp[0]["code"]


def test_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]*)?\)", index))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages - linked == set(), "link these pages from docs/index.md"
    assert linked - pages == set(), "docs/index.md links pages that do not exist"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "(docs/index.md)" in readme and "(docs/data.md)" in readme
