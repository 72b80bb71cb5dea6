"""Run a page's code blocks in order, in the current folder: ``python docs_runner.py BLOCKS.json``.

``BLOCKS.json`` is a list of ``{"lang": "python" | "bash", "code": ..., "line": N, "page": ...}``.
Python blocks share one namespace, as in a notebook; bash blocks run with ``bash -euo pipefail``.
The first block that fails stops the run with its page and line on stderr (exit 1).
Used by ``tests/test_docs_run.py``, in a process of its own so that a page's imports, plugins
and warnings stay out of the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        blocks = json.load(f)
    namespace: dict = {"__name__": "__main__"}
    for block in blocks:
        where = f"{block['page']}:{block['line']}"
        print(f"--- {where} ({block['lang']})", flush=True)
        if block["lang"] == "python":
            try:
                exec(compile(block["code"], where, "exec"), namespace)  # noqa: S102
            except Exception:
                traceback.print_exc()
                print(f"block at {where} failed", file=sys.stderr)
                return 1
        else:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", block["code"]], check=False)
            if done.returncode != 0:
                print(f"block at {where} exited with {done.returncode}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
