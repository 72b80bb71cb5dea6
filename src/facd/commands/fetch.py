"""``facd fetch``: download the official weights and data sets, verify and install them.

``facd fetch NAME...`` prints, one a line on stdout, the path to give facd for each name (a
weights file for ``teacher.weights``/``facd.load``, a folder for ``--data-root`` or
``data.train_dirs``); progress and notes go to stderr. ``--list`` shows every name with its
size, licence, checksum and state. ``--from FILE`` installs a file downloaded by hand (the
only way for the RCAN weights, which are on cloud drives). See docs/fetch.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="what to fetch (see --list)")
    parser.add_argument(
        "--list", action="store_true", help="show every name: size, licence, checksum, state"
    )
    parser.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="FILE",
        help="install a file downloaded by hand, verified like a download (a zip holding "
        "several weights serves several names)",
    )
    parser.add_argument("--force", action="store_true", help="fetch again even when installed")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def format_list(home: Path) -> str:
    """One block per entry: name, kind, size, licence, checksum and state, then its address
    and where that address is published."""
    from facd.fetch.catalogue import CATALOGUE
    from facd.fetch.install import checksum_text, installed_path, is_installed

    lines = [f"fetch folder: {home}  (set FACD_HOME to move it)", ""]
    head = f"{'name':<18}{'kind':<9}{'size':>9}  {'state':<10}{'checksum':<40}licence"
    lines.append(head)
    for src in CATALOGUE.values():
        state = "installed" if is_installed(src, home) else "manual" if src.is_manual else "-"
        lines.append(
            f"{src.name:<18}{src.kind:<9}{'~' + src.size:>9}  {state:<10}"
            f"{checksum_text(src, home):<40}{src.licence}"
        )
        lines.append(f"    {src.title}")
        if src.is_manual:
            lines.append(f"    manual: {src.member} in a zip at {src.manual[0]} (or the others "
                         f"listed in docs/fetch.md); facd fetch {src.name} --from FILE")  # fmt: skip
        else:
            lines.append(f"    from {src.url}")
        lines.append(f"    address published in {src.where}")
        if is_installed(src, home):
            lines.append(f"    installed: {installed_path(src, home)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from facd.errors import FacdError
    from facd.fetch.install import fetch, install_from, lookup, manual_error, source_url
    from facd.fetch.store import fetch_home

    home = fetch_home()
    if args.list:
        print(format_list(home))
        return 0
    if not args.names:
        raise FacdError("name what to fetch, e.g. facd fetch edsr-x4 benchmark (facd fetch --list)")
    names = list(dict.fromkeys(args.names))
    for name in names:  # every name is checked before anything is downloaded
        src = lookup(name)
        if args.from_file is None and source_url(src) is None:
            raise manual_error(src)
    for name in names:
        if args.from_file is not None:
            path = install_from(name, args.from_file, home=home)
        else:
            path = fetch(name, home=home, force=args.force, progress=not args.quiet)
        print(path, flush=True)
    return 0
