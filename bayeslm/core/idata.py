"""Everything that touches the InferenceData container: attrs, groups and netCDF IO.

Kept in one place so the move from ArviZ 0.2x ``InferenceData`` to ArviZ 1's DataTree
changes one module. Elsewhere use ``idata["posterior"]`` item access.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from bayeslm.exceptions import ModelFileError

__all__ = ["add_group", "set_root_attrs", "root_attrs", "write_netcdf", "read_netcdf", "sample_count", "posterior_draws"]


def _az():
    import arviz as az

    return az


def add_group(idata, name: str, dataset: xr.Dataset) -> None:
    """Add (or replace) a group of the InferenceData."""
    if name in idata.groups():
        idata.__delattr__(name)
    idata.add_groups({name: dataset}, warn_on_custom_groups=False)


def set_root_attrs(idata, attrs: dict) -> None:
    """Store bayeslm's attrs (strings and numbers; dicts as JSON) on every group.

    ArviZ 0.2x has no root attrs in netCDF, so the ``posterior`` group carries them and
    every other group gets the modelling-interface marker.
    """
    from bayeslm.version import __version__
    clean = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}
    for group in idata.groups():
        ds = idata[group]
        ds.attrs["modeling_interface"] = "bayeslm"
        ds.attrs["modeling_interface_version"] = __version__
    idata["posterior"].attrs.update(clean)


def root_attrs(idata) -> dict:
    """The attrs :func:`set_root_attrs` stored (JSON values left as strings)."""
    if "posterior" not in idata.groups():
        raise ModelFileError("the model has no posterior group (was it fitted?)")
    return dict(idata["posterior"].attrs)


def write_netcdf(idata, path: str | Path) -> None:
    """Write the InferenceData to ``path`` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        idata.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_netcdf(path: str | Path):
    """Read an InferenceData fully into memory; any failure is a :class:`ModelFileError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: missing (not a bayeslm model directory?)")
    try:
        idata = _az().from_netcdf(path, engine="h5netcdf")
        for group in idata.groups():
            idata[group].load()
    except Exception as err:  # h5py/xarray raise many types for corrupt files
        raise ModelFileError(f"{path}: corrupt or truncated netCDF file ({type(err).__name__}: {err})") from None
    return idata


def sample_count(idata) -> int:
    post = idata["posterior"]
    return int(post.sizes["chain"] * post.sizes["draw"])


def posterior_draws(idata, var: str) -> np.ndarray:
    """Draws of a variable flattened over (chain, draw) to shape (samples, *var_shape)."""
    da = idata["posterior"][var]
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).values
