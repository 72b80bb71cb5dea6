"""``facd reproduce PROTOCOL [--out DIR] [--jobs N] [--only ROW...] [--report-only]``, or
``facd reproduce --schema`` (the JSON schema of a protocol file; docs/protocols.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facd.commands._args import int_arg

MAX_JOBS = 256  # as data.num_workers: more processes than that is a typo, not a plan


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "protocol", nargs="?", help="protocol file (configs/repro/*.yaml; see docs/protocols.md)"
    )
    p.add_argument(
        "--out", type=Path, help="folder of the training runs (default: runs/repro-<name>)"
    )
    p.add_argument(
        "--jobs",
        type=int_arg(1, MAX_JOBS),
        default=2,
        help=f"parallel processes, one thread each (1 to {MAX_JOBS})",
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="ROW",
        help="run only these rows (names or run ids, e.g. facd-s1)",
    )
    p.add_argument(
        "--report-only", action="store_true", help="only regenerate the report from the JSON"
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report after running")
    p.add_argument(
        "--no-figures",
        action="store_true",
        help="do not redraw the figures; the report links those already in figures_dir",
    )
    p.add_argument(
        "--schema", action="store_true", help="print the protocol file's JSON schema and exit"
    )


def protocol_schema() -> dict:
    """The JSON schema (draft 2020-12) of a protocol file, from :class:`Protocol`'s fields:
    their types, defaults, descriptions and bounds; unknown keys are refused
    (``additionalProperties: false``), as :func:`load_protocol` refuses them."""
    from facd.reproduce.protocol import Protocol
    from facd.typedconfig import json_schema

    schema = json_schema(Protocol)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "facd reproduction protocol"
    return schema


def run(args: argparse.Namespace) -> int:
    from facd.errors import ConfigError
    from facd.reproduce.checks import check_owner, lock_results
    from facd.reproduce.protocol import load_protocol
    from facd.reproduce.report import write_report
    from facd.reproduce.runner import Reproduction

    if args.schema:
        print(json.dumps(protocol_schema(), indent=2))
        return 0
    if args.protocol is None:
        raise ConfigError(
            "facd reproduce needs PROTOCOL, a protocol file (e.g. configs/repro/mini-x4.yaml; "
            "see docs/protocols.md), or --schema"
        )
    if not args.no_figures and (args.report_only or not args.no_report):
        from facd.reproduce.figures import require_matplotlib

        require_matplotlib()  # before any run: the report at the end draws its figures
    proto = load_protocol(args.protocol)
    check_owner(proto.results_dir, proto.report.path, proto.name)
    code = 0
    if not args.report_only:
        lock = lock_results(proto.results_dir)  # held until this process ends
        out = args.out or Path("runs") / f"repro-{proto.name}"
        outcome = Reproduction(proto, out, jobs=args.jobs, only=args.only).run()
        code = 1 if outcome.failed else 0
        lock.release()
    if args.report_only or not args.no_report:
        write_report(proto, args.protocol, figures=not args.no_figures)
    return code
