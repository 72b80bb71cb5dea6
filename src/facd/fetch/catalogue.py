"""What ``facd fetch`` knows: the official weights and data sets, where each is published.

Every address below is copied from the project that publishes the file; the comment beside each
group names the repository and the file the address was taken from. A checksum is recorded only
where that project publishes one: the EDSR file names end in the first 8 hex digits of the
file's SHA-256 (the torch.hub naming convention, ``name-<sha256 prefix>.pt``). No other project
publishes a checksum, so those entries have ``sha256=None`` and are verified by trust on first
use (:mod:`facd.fetch.store`).

An entry with ``url=None`` is *manual*: its file is only on hosts that need a browser (cloud
drives), so ``facd fetch`` prints ``manual`` (the pages to download it from) and installs a
downloaded file given with ``--from``.

Sizes are approximate, for planning disk space: weights as the bytes of the tensors of facd's
equivalent network (the file adds a little pickle overhead), archives as their projects state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CATALOGUE", "Source", "archive_kind"]


@dataclass(frozen=True)
class Source:
    """One fetchable file: a weights file installed as it is, or an archive that is extracted.

    ``file`` is the published file name (the installed weights keep it); ``where`` names the
    repository and file that publish ``url``; ``sha256`` is the published SHA-256 or a prefix
    of it (at least 8 hex digits) and ``sha256_from`` where it is published. ``manual`` lists
    the pages to download a manual entry from, and ``member`` the file's name inside the
    archive those pages offer (``RCAN_BIX4.pt`` in ``models_ECCV2018RCAN.zip``). For archives,
    ``strip`` is a leading folder dropped from every member's path and ``provides`` the paths,
    under the data folder, that exist once it is installed.
    """

    name: str
    kind: Literal["weights", "data"]
    title: str
    file: str
    url: str | None
    where: str
    licence: str
    size: str
    sha256: str | None = None
    sha256_from: str = ""
    manual: tuple[str, ...] = ()
    member: str = ""
    strip: str = ""
    provides: tuple[str, ...] = ()

    @property
    def is_manual(self) -> bool:
        return self.url is None


def archive_kind(file_name: str) -> str | None:
    """``"zip"``, ``"tar"`` or None (not an archive), from the file name's ending."""
    lower = file_name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return None


# -- EDSR: sanghyun-son/EDSR-PyTorch, src/model/edsr.py (the `url` dict). MIT licence (LICENSE).
# The 8 hex digits before ".pt" are the SHA-256 prefix (torch.hub convention).
_EDSR_BASE = "https://cv.snu.ac.kr/research/EDSR/models/"
_EDSR_WHERE = "sanghyun-son/EDSR-PyTorch, src/model/edsr.py"
_EDSR_HASH_FROM = "the published file name (torch.hub convention: SHA-256 prefix)"
_EDSR = [
    ("edsr-baseline-x2", "EDSR baseline x2 (16 blocks, 64 channels)", "edsr_baseline_x2-1bc95232.pt", "1bc95232", "5.5 MB"),
    ("edsr-baseline-x3", "EDSR baseline x3 (16 blocks, 64 channels)", "edsr_baseline_x3-abf2a44e.pt", "abf2a44e", "6.2 MB"),
    ("edsr-baseline-x4", "EDSR baseline x4 (16 blocks, 64 channels)", "edsr_baseline_x4-6b446fab.pt", "6b446fab", "6.1 MB"),
    ("edsr-x2", "EDSR x2 (32 blocks, 256 channels)", "edsr_x2-0edfb8a3.pt", "0edfb8a3", "163 MB"),
    ("edsr-x3", "EDSR x3 (32 blocks, 256 channels)", "edsr_x3-ea3ef2c6.pt", "ea3ef2c6", "175 MB"),
    ("edsr-x4", "EDSR x4 (32 blocks, 256 channels)", "edsr_x4-4f62e9ef.pt", "4f62e9ef", "172 MB"),
]  # fmt: skip

# -- RCAN: yulunzhang/RCAN, README.md ("All the models (BIX2/3/4/8, BDX3) can be downloaded
# from Dropbox, BaiduYun, or GoogleDrive"): one zip, models_ECCV2018RCAN.zip, on cloud drives
# only, hence manual. The repository states no licence.
_RCAN_PAGES = (
    "https://www.dropbox.com/s/qm9vc0p0w9i4s0n/models_ECCV2018RCAN.zip?dl=0",
    "https://drive.google.com/file/d/10bEK-NxVtOS9-XSeyOZyaRmxUTX3iIRa/view?usp=sharing",
    "https://pan.baidu.com/s/1bkoJKmdOcvLhOFXHVkFlKA",
)
_RCAN_WHERE = "yulunzhang/RCAN, README.md"
_RCAN_LICENCE = "none stated (yulunzhang/RCAN)"

# -- SwinIR: JingyunLiang/SwinIR, main_test_swinir.py (downloads
# https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/<file name>); the file names of
# classical SwinIR-M (trained on DIV2K, 48-pixel patches) and lightweight SwinIR-S are in its
# README.md. Apache 2.0 licence (README.md, "License and Acknowledgement").
_SWINIR_BASE = "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/"
_SWINIR_WHERE = "JingyunLiang/SwinIR, main_test_swinir.py and README.md"
_SWINIR = [
    ("swinir-m-x2", "SwinIR-M classical x2 (DIV2K, 48-pixel patches)", "001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth", "60 MB"),
    ("swinir-m-x3", "SwinIR-M classical x3 (DIV2K, 48-pixel patches)", "001_classicalSR_DIV2K_s48w8_SwinIR-M_x3.pth", "60 MB"),
    ("swinir-m-x4", "SwinIR-M classical x4 (DIV2K, 48-pixel patches)", "001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth", "60 MB"),
    ("swinir-s-x2", "SwinIR-S lightweight x2 (DIV2K)", "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth", "17 MB"),
    ("swinir-s-x3", "SwinIR-S lightweight x3 (DIV2K)", "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x3.pth", "17 MB"),
    ("swinir-s-x4", "SwinIR-S lightweight x4 (DIV2K)", "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4.pth", "17 MB"),
]  # fmt: skip

# -- Benchmark sets: sanghyun-son/EDSR-PyTorch, README.md ("You can download benchmark
# datasets (250MB)"): benchmark.tar holds benchmark/<Set>/HR and LR_bicubic/X<s>, the layout
# facd eval reads. The images come from the sets' papers; no licence is given for them.
# -- DIV2K: the DIV2K page https://data.vision.ee.ethz.ch/cvl/DIV2K/ (linked as the official
# site by XPixelGroup/BasicSR, docs/DatasetPreparation.md, and yulunzhang/RCAN, README.md);
# the page states the data are for academic research only, copyright with the images' owners.
_DIV2K_BASE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
_DIV2K_WHERE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/ (cited by XPixelGroup/BasicSR, docs/DatasetPreparation.md)"
_DIV2K_LICENCE = "academic research only (DIV2K page); images' copyright with their owners"


def _entries() -> list[Source]:
    entries = [
        Source(name, "weights", title, file, _EDSR_BASE + file, _EDSR_WHERE, "MIT", size,
               sha256=prefix, sha256_from=_EDSR_HASH_FROM)
        for name, title, file, prefix, size in _EDSR
    ]  # fmt: skip
    entries += [
        Source(f"rcan-x{s}", "weights", f"RCAN x{s} (10 groups x 20 blocks, 64 channels)",
               f"RCAN_BIX{s}.pt", None, _RCAN_WHERE, _RCAN_LICENCE, "62 MB",
               manual=_RCAN_PAGES, member=f"RCAN_BIX{s}.pt")
        for s in (2, 3, 4)
    ]  # fmt: skip
    entries += [
        Source(name, "weights", title, file, _SWINIR_BASE + file, _SWINIR_WHERE, "Apache-2.0", size)
        for name, title, file, size in _SWINIR
    ]  # fmt: skip
    entries += [
        Source("benchmark", "data", "Set5, Set14, B100, Urban100 (HR and bicubic LR x2/x3/x4)",
               "benchmark.tar", "https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
               "sanghyun-son/EDSR-PyTorch, README.md", "none stated (research benchmark images)",
               "250 MB", strip="benchmark",
               provides=("Set5/HR", "Set14/HR", "B100/HR", "Urban100/HR")),
        Source("div2k", "data", "DIV2K training set, 800 HR images (the paper's training data)",
               "DIV2K_train_HR.zip", _DIV2K_BASE + "DIV2K_train_HR.zip", _DIV2K_WHERE,
               _DIV2K_LICENCE, "3.5 GB", provides=("DIV2K_train_HR",)),
        Source("div2k-valid", "data", "DIV2K validation set, 100 HR images",
               "DIV2K_valid_HR.zip", _DIV2K_BASE + "DIV2K_valid_HR.zip", _DIV2K_WHERE,
               _DIV2K_LICENCE, "0.45 GB", provides=("DIV2K_valid_HR",)),
    ]  # fmt: skip
    return entries


CATALOGUE: dict[str, Source] = {s.name: s for s in _entries()}
"""Every entry ``facd fetch`` knows, by name, in the order ``facd fetch --list`` shows them."""
