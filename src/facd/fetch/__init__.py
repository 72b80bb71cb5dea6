"""``facd fetch``: the official weights and data sets, downloaded from their projects.

:mod:`facd.fetch.catalogue` lists what is known and where each address and checksum is
published; :mod:`facd.fetch.store` is the fetch folder (``$FACD_HOME``) and the checksums
recorded on first use; :mod:`facd.fetch.download` downloads with resume;
:mod:`facd.fetch.archive` extracts safely; :mod:`facd.fetch.install` puts it together.

Installed weights are plain files that every facd entry point loads as they are
(``facd.load(path)``, ``teacher.weights=PATH``); ``facd fetch NAME`` prints the path.
"""

from facd.fetch.catalogue import CATALOGUE, Source
from facd.fetch.install import fetch, install_from, installed_path
from facd.fetch.store import default_data_root, fetch_home

__all__ = [
    "CATALOGUE",
    "Source",
    "default_data_root",
    "fetch",
    "fetch_home",
    "install_from",
    "installed_path",
]
