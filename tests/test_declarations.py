"""Method declarations: every method has a label, its terms and its teacher stage."""

from __future__ import annotations

from facd.distill.methods import METHODS, get_method


def test_every_method_declares_label_terms_and_stage():
    labels = [m.label for m in METHODS.values()]
    assert all(labels) and len(set(labels)) == len(labels)
    for m in METHODS.values():
        assert m.terms and all(isinstance(n, str) and w > 0 for n, w in m.terms)
        assert m.teacher_stage is None or m.teacher_stage in METHODS
    assert get_method("pisr").teacher_stage == "pisr-teacher"
    assert get_method("facd").label == "FACD"
    assert dict(get_method("ts").terms) == {"l1_gt": 0.5, "l1_t": 0.5}
