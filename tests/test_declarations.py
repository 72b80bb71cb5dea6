"""Method declarations: one place names methods and declares what their terms need.

Everything else (the trainer, the distiller, ``facd methods``, docs/methods.md, the report)
reads the declarations; these tests check that and that a wrong combination fails at load.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facd.distill.methods import METHODS, get_method, needs_of, resolve_loss
from facd.distill.terms import TERMS
from facd.errors import ConfigError

from .helpers import isolate_registries

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "facd"
DECLARATIONS = SRC / "distill" / "methods.py"


def test_every_method_declares_label_terms_and_stage():
    labels = [m.label for m in METHODS.values()]
    assert all(labels) and len(set(labels)) == len(labels)
    for m in METHODS.values():
        assert m.terms and all(isinstance(n, str) and w > 0 for n, w in m.terms)
        assert m.teacher_stage is None or m.teacher_stage in METHODS
    assert get_method("pisr").teacher_stage == "pisr-teacher"
    assert get_method("facd").label == "FACD"
    assert dict(get_method("ts").terms) == {"l1_gt": 0.5, "l1_t": 0.5}


def test_needs_come_from_the_terms_declarations():
    assert not get_method("scratch").needs_teacher
    assert not get_method("pisr-teacher").needs.teacher
    pisr = get_method("pisr").needs
    assert pisr.teacher_features and pisr.student_features and pisr.teacher_stage
    icd = get_method("icd").needs  # the contrast on output images taps no features
    assert icd.teacher_output and not icd.student_features
    assert get_method("fcd").needs.student_features
    assert "VGG19" in get_method("csd").needs.extra_network
    adaptive = resolve_loss("ts", {"pixel": {"adaptive": True, "teacher_weight": 0.0}})
    assert needs_of(adaptive).teacher_output  # the indicator compares with the teacher
    assert [t.name for t in TERMS.values()][:7] == [
        "l1_gt", "l1_t", "contrast", "fakd", "lfd", "csd", "vid",
    ]  # fmt: skip


def test_adaptive_pixel_loss_without_teacher_is_a_config_error_at_load():
    from facd.train.config import load_config

    with pytest.raises(ConfigError) as info:
        load_config(REPO / "configs" / "tiny" / "scratch.yaml", ["loss.pixel.adaptive=true"])
    msg = str(info.value)
    assert "\n" not in msg and "method 'scratch' trains without a teacher" in msg
    assert "'loss.pixel' override" in msg
    with pytest.raises(ConfigError, match="'loss.contrast' override"):
        resolve_loss("scratch", {"contrast": {"weight": 1.0}})
    with pytest.raises(ConfigError, match="'loss.vid' override"):
        resolve_loss("pisr-teacher", {"vid": {"mode": "distill"}})
    assert resolve_loss("scratch", {"pixel": {"gt_weight": 2.0}}).pixel.gt_weight == 2.0


def test_docs_method_table_matches_the_declarations():
    from facd.commands.methods import format_markdown, method_rows

    text = (REPO / "docs" / "methods.md").read_text()
    found = re.search(
        r"<!-- BEGIN facd methods --markdown -->\n(.*?)\n<!-- END facd methods --markdown -->",
        text,
        re.S,
    )
    assert found, "docs/methods.md lacks the generated method table"
    assert found.group(1) == format_markdown(method_rows()), (
        "docs/methods.md is out of date: paste the output of `facd methods --markdown` "
        "between its BEGIN/END markers"
    )


def _quoted_method_names(path: Path, names: set[str], shared: set[str]) -> list[str]:
    """``file:line name`` for each quoted method name. A name that is also a term, a loss
    section or the package's own name counts only on a line that speaks of a method."""
    hits = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        for m in re.finditer(r"""(['"])([a-z0-9-]+)\1""", line):
            name = m.group(2)
            if name in names and (name not in shared or "method" in line.lower()):
                hits.append(f"{path.relative_to(SRC)}:{n} {name}")
    return hits


def test_no_method_name_in_src_outside_the_declarations():
    names = set(METHODS)
    shared = {t.name for t in TERMS.values()} | {t.section for t in TERMS.values()} | {"facd"}
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        if path != DECLARATIONS:
            hits += _quoted_method_names(path, names, shared)
    assert not hits, "method names outside the declarations:\n" + "\n".join(hits)


def test_term_weights_sections_and_inert_options_come_from_the_declarations():
    """What the report and the fingerprints read of plain-data loss options."""
    from facd.distill.methods import (
        inert_options,
        pixel_terms,
        section_switched_off,
        term_weight,
    )

    loss = {
        "pixel": {"gt_weight": 0.5, "teacher_weight": 0.25},
        "contrast": {"weight": 0.0, "similarity": "infonce"},
        "vid": {"weight": 1e-6},
        "mine": {"weight": 2.0},  # a term declared by a module not imported here
    }
    assert term_weight("l1_gt", loss) == 0.5 and term_weight("l1_t", loss) == 0.25
    assert term_weight("vid", loss) == 1e-6 and term_weight("mine", loss) == 2.0
    assert term_weight("contrast", {}) is None
    assert pixel_terms() == {"l1_gt", "l1_t"}
    assert section_switched_off("contrast", loss) and not section_switched_off("vid", loss)
    assert not section_switched_off("pixel", loss) and not section_switched_off("mine", loss)
    assert section_switched_off("pixel", {"pixel": {"gt_weight": 0, "teacher_weight": 0}})
    assert inert_options("contrast", {"similarity": "l1_ratio"}) == ("infonce_form", "temperature")
    assert inert_options("contrast", loss["contrast"]) == () and inert_options("vid", {}) == ()


def test_a_run_folders_weight_files_come_from_the_term_declarations(monkeypatch):
    import dataclasses

    from facd.train.rundir import weight_files

    assert weight_files() == ("last.safetensors", "best.safetensors", "pisr_encoder.safetensors")
    mine = dataclasses.replace(TERMS["vid"], name="mine", section="mine", outputs=("m.bin",))
    isolate_registries(monkeypatch)
    TERMS.register("mine", mine)
    assert weight_files()[-1] == "m.bin"
