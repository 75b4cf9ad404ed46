"""Everything that touches the InferenceData container: attrs, groups and netCDF IO.

Kept in one place so the move from ArviZ 0.2x ``InferenceData`` to ArviZ 1's DataTree
changes one module. Elsewhere use ``idata["posterior"]`` item access.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import xarray as xr

from bayeslm.exceptions import ModelFileError

__all__ = ["add_group", "set_root_attrs", "root_attrs", "netcdf_bytes", "write_netcdf", "read_netcdf", "sample_count",
           "posterior_draws", "inferred_groups", "SAMPLER_GROUPS"]

#: groups that record how the sampler ran (timings, step sizes), not what it inferred
SAMPLER_GROUPS = ("sample_stats", "warmup_sample_stats")


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


def inferred_groups(idata) -> dict:
    """Every group but :data:`SAMPLER_GROUPS`, as Datasets (name -> Dataset)."""
    return {group: idata[group] for group in idata.groups() if group not in SAMPLER_GROUPS}


def root_attrs(idata) -> dict:
    """The attrs :func:`set_root_attrs` stored (JSON values left as strings)."""
    if "posterior" not in idata.groups():
        raise ModelFileError("the model has no posterior group (was it fitted?)")
    return dict(idata["posterior"].attrs)


def netcdf_bytes(idata, *, posterior_attrs: dict | None = None) -> bytes:
    """The netCDF file of the InferenceData (as ``InferenceData.to_netcdf`` writes it), in memory.

    Written in memory so that a failing disk meets a plain ``write`` of these bytes, never
    the HDF5 library halfway through a file (a full disk made it crash). ``posterior_attrs``
    are added to the ``posterior`` group's attrs in the file only.
    """
    buffer = io.BytesIO()
    mode = "w"
    if idata.attrs:
        xr.Dataset(attrs=idata.attrs).to_netcdf(buffer, mode=mode, group="/", engine="h5netcdf")
        mode = "a"
    for group in idata.groups():
        data = idata[group]
        if group == "posterior" and posterior_attrs:
            data = data.copy()
            data.attrs = {**data.attrs, **posterior_attrs}
        encoding = {name: {"zlib": True} for name, values in data.variables.items() if _compressible(values.dtype)}
        data.to_netcdf(buffer, mode=mode, group=f"//{group}", engine="h5netcdf", encoding=encoding)
        mode = "a"
    return buffer.getvalue()


def _compressible(dtype) -> bool:
    """ArviZ's rule for which variables ``to_netcdf`` compresses."""
    if dtype.kind == "V":
        return all(_compressible(item) for item, _ in dtype.fields.values())
    return dtype.kind in {"b", "i", "u", "f", "c", "S"}


def write_netcdf(idata, path: str | Path) -> None:
    """Write the InferenceData to ``path`` all-or-nothing (see :func:`netcdf_bytes`)."""
    from bayeslm.core.files import atomic_write_bytes

    atomic_write_bytes(path, netcdf_bytes(idata))


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
