"""Altering saved model directories in tests: writable copies, attrs rewritten, manifest brought
in line with the files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from bayeslm.core.idata import netcdf_bytes


def writable_copy(model_dir: Path, folder: Path, name: str = "copy") -> Path:
    """A copy of a (shared, never modified) model directory as ``folder / name``, to alter or replace."""
    return Path(shutil.copytree(model_dir, folder / name))


def reseal(model_dir: Path) -> None:
    """Rewrite manifest.json to match the files (a consistent but altered directory)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    for name in list(manifest["files"]):
        data = (model_dir / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (model_dir / "manifest.json").write_text(json.dumps(manifest))


def rewrite_attrs(model_dir: Path, **changes) -> None:
    """Rewrite model.nc with some posterior attrs changed (None: removed), as another writer would."""
    import arviz as az

    idata = az.from_netcdf(model_dir / "model.nc")
    for group in idata.groups():
        idata[group].load()
    attrs = idata["posterior"].attrs
    for key, value in changes.items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    (model_dir / "model.nc").write_bytes(netcdf_bytes(idata))
