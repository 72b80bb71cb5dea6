"""What the report reads from a run's record beyond its PSNR: the weighted loss terms at the end
of training and the distillation share of the loss and of the gradient, whether a method's
adaptive indicator is on, whether a training set holds a benchmark image in disguise, and
whether a run's validation curve shows a divergence (:func:`largest_dip`).

The distillation share of the loss is ``sum_k w_k L_k / sum_j w_j L_j`` over the terms k that
are not a pixel L1 term (to the ground truth or to the teacher's output), each term averaged
over the last quarter of training (:func:`facd.reproduce.records.final_terms`) and weighted by
the run's resolved loss options (:func:`weighted_terms`).
"""

from __future__ import annotations

import json
from pathlib import Path

#: Training images that are benchmark images in disguise, found by ``tools/near_duplicates.py``
#: (``configs/splits/train-exclude-291.txt`` leaves them out of new protocols and teachers).
NEAR_DUPLICATES = {"BSD200/HR/302003.png": "Set5's woman.png, rescaled"}


#: A run whose validation Y-PSNR falls this far (dB) below its best so far diverged on the way
#: (a loss spike): with the lr halved at fixed milestones, a stable run never falls that far.
DIP_DB = 1.0


def largest_dip(curve: list[list[float]]) -> tuple[float, float] | None:
    """``(dip, iteration)``: the largest fall of a validation curve ``[[iteration, psnr], ...]``
    below its running best, ``max_i (max_{j<=i} p_j - p_i)``, and where it happens (the first
    such point); None for an empty curve. A monotone curve has dip 0."""
    best, dip, at = float("-inf"), 0.0, None
    for it, psnr in curve:
        best = max(best, psnr)
        if best - psnr > dip:
            dip, at = best - psnr, it
    if not curve:
        return None
    return dip, at if at is not None else curve[0][0]


def adaptive(method: str) -> bool:
    """Whether the method's declaration switches the adaptive indicator (Eq. 1) on, in a term
    that is on (the teacher image term or the contrast)."""
    from facd.distill.methods import get_method

    opts = get_method(method).loss_options()
    pixel = opts.pixel.adaptive and opts.pixel.teacher_weight > 0
    return bool(pixel or (opts.contrast.adaptive and opts.contrast.weight > 0))


def weighted_terms(doc: dict) -> dict[str, float]:
    """``weight * value`` of each logged term, weights from the run's resolved loss options."""
    from facd.distill.methods import term_weight

    loss = (doc.get("config") or {}).get("loss") or {}
    out = {}
    for name, value in (doc.get("final_terms") or {}).items():
        w = None if name == "loss" else term_weight(name, loss)
        if w is not None:
            out[name] = w * value
    return out


def gradient_distill_share(results_dir: str, run: str) -> float | None:
    """The share of the student's gradient from terms that are not a pixel L1 term, from
    ``gradshare-<run>.json`` (None when not measured)."""
    path = Path(results_dir) / f"gradshare-{run}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    terms = doc.get("terms") if isinstance(doc, dict) else None
    if not isinstance(terms, list) or not terms:
        return None
    from facd.distill.methods import pixel_terms

    pixel = pixel_terms()
    return sum(float(t["grad_share"]) for t in terms if t.get("name") not in pixel)


def distill_share(doc: dict) -> float | None:
    """Share of the weighted total that is not a pixel L1 term (None if not logged)."""
    from facd.distill.methods import pixel_terms

    terms = weighted_terms(doc)
    total = sum(terms.values())
    if not terms or total <= 0:
        return None
    return sum(v for k, v in terms.items() if k not in pixel_terms()) / total


def trains_on(data: dict, image: str) -> bool:
    """Whether a ``data`` section (``train_dirs``, ``exclude``) trains on ``image``, a path
    relative to the data root such as ``BSD200/HR/302003.png``: a training folder ends in the
    image's folder and the exclusion list (a file of such paths) does not name it."""
    folder = image.rsplit("/", 1)[0]
    dirs = [Path(d).as_posix().rstrip("/") for d in data.get("train_dirs") or []]
    if not any(d == folder or d.endswith("/" + folder) for d in dirs):
        return False
    exclude = data.get("exclude")
    if not exclude:
        return True
    try:
        lines = Path(exclude).read_text(encoding="utf-8").splitlines()
    except OSError:
        return True
    return image not in {ln.split("#", 1)[0].strip() for ln in lines}
