"""Everything that touches the InferenceData container: attrs, groups and netCDF IO.

Kept in one place so the move from ArviZ 0.2x ``InferenceData`` to ArviZ 1's DataTree
changes one module. Elsewhere use ``idata["posterior"]`` item access. A model read from
disk, and a posterior built by :func:`from_draws`, is a :class:`LazyInferenceData`: its
groups are read with xarray alone, and ArviZ (1-3 s to import) is imported only when the
object is used as more than its groups and attrs (docs/domain.md, "Cost").
"""

from __future__ import annotations

import copy
import datetime
import importlib.metadata
import io
import json
from pathlib import Path

import numpy as np
import xarray as xr

from bayeslm.exceptions import ModelFileError

__all__ = ["add_group", "set_root_attrs", "root_attrs", "netcdf_bytes", "write_netcdf", "read_netcdf", "sample_count",
           "posterior_draws", "inferred_groups", "from_draws", "LazyInferenceData", "SAMPLER_GROUPS", "GROUP_ORDER"]

#: groups that record how the sampler ran (timings, step sizes), not what it inferred
SAMPLER_GROUPS = ("sample_stats", "warmup_sample_stats")
#: ArviZ 0.23's order of the groups it knows (``SUPPORTED_GROUPS_ALL``); others follow in the order given
GROUP_ORDER = ("posterior", "posterior_predictive", "predictions", "log_likelihood", "log_prior", "sample_stats", "prior",
               "prior_predictive", "sample_stats_prior", "observed_data", "constant_data", "predictions_constant_data",
               "unconstrained_posterior", "unconstrained_prior", "warmup_posterior", "warmup_posterior_predictive",
               "warmup_predictions", "warmup_sample_stats", "warmup_log_likelihood", "warmup_log_prior")


def _az():
    import arviz as az

    return az


class LazyInferenceData:
    """An ArviZ ``InferenceData`` that imports ArviZ only when it is used as one.

    Holds the groups (name -> ``xarray.Dataset``, in ArviZ's order) and the root attrs, and
    answers what bayeslm's fitting, scoring and saving ask of an InferenceData without
    ArviZ: :meth:`groups`, ``idata["posterior"]``, ``idata.posterior``, ``in``, ``attrs``,
    :meth:`add_groups`. Anything else (an ArviZ function given it, ``isinstance``, a method
    of ``InferenceData``) builds the InferenceData from the same Dataset objects once, and
    from then on this object forwards everything to it (Django's ``SimpleLazyObject``
    pattern: ``__class__`` answers the wrapped object's class), so it is an InferenceData to
    every caller.
    """

    def __init__(self, groups: dict[str, xr.Dataset], attrs: dict | None = None):
        known = [g for g in GROUP_ORDER if g in groups]
        object.__setattr__(self, "_groups_data", {g: groups[g] for g in known + [g for g in groups if g not in known]})
        object.__setattr__(self, "_root_attrs", dict(attrs) if attrs else None)
        object.__setattr__(self, "_wrapped", None)

    def _idata(self):
        """The ArviZ InferenceData over the same Datasets (built, and ArviZ imported, on first use)."""
        if self._wrapped is None:
            wrapped = _az().InferenceData(attrs=self._root_attrs, **self._groups_data)
            object.__setattr__(self, "_wrapped", wrapped)
        return self._wrapped

    @property
    def __class__(self):
        return self._idata().__class__

    def groups(self) -> list[str]:
        return list(self._groups_data) if self._wrapped is None else self._wrapped.groups()

    def __getitem__(self, name: str) -> xr.Dataset:
        if self._wrapped is not None:
            return self._wrapped[name]
        if name not in self._groups_data:
            raise KeyError(name)
        return self._groups_data[name]

    def __contains__(self, name) -> bool:
        return name in self.groups()

    def __iter__(self):
        return iter(self.groups())

    def __len__(self) -> int:
        return len(self.groups())

    @property
    def attrs(self) -> dict:
        if self._wrapped is not None:
            return self._wrapped.attrs
        if self._root_attrs is None:
            object.__setattr__(self, "_root_attrs", {})
        return self._root_attrs

    def add_groups(self, groups: dict, warn_on_custom_groups: bool = False) -> None:
        if self._wrapped is not None:
            return self._wrapped.add_groups(groups, warn_on_custom_groups=warn_on_custom_groups)
        if clash := sorted(set(groups) & set(self._groups_data)):
            raise ValueError(f"{clash} group(s) already exist.")  # as InferenceData.add_groups
        self._groups_data.update(groups)

    def __getattr__(self, name: str):
        groups = self.__dict__.get("_groups_data", {})
        if self.__dict__.get("_wrapped") is None and name in groups:
            return groups[name]
        return getattr(self._idata(), name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._idata(), name, value)

    def __delattr__(self, name: str) -> None:
        if self._wrapped is None and name in self._groups_data:
            del self._groups_data[name]
            return
        delattr(self._idata(), name)

    def __repr__(self) -> str:
        return repr(self._idata())

    def __setitem__(self, name, value) -> None:
        self._idata()[name] = value

    def __delitem__(self, name) -> None:
        del self._idata()[name]

    def __add__(self, other):
        return self._idata() + other

    def __copy__(self):
        return copy.copy(self._idata())

    def __deepcopy__(self, memo):
        return copy.deepcopy(self._idata(), memo)

    def __reduce_ex__(self, protocol):
        return self._idata().__reduce_ex__(protocol)

    def __dir__(self):
        return dir(self._idata())


def from_draws(posterior: dict[str, np.ndarray], *, coords: dict | None = None, dims: dict | None = None,
               attrs: dict | None = None) -> LazyInferenceData:
    """An InferenceData with one ``posterior`` group, as ``arviz.from_dict(posterior=...)`` builds it, without ArviZ.

    ``posterior``: name -> draws of shape (chain, draw, *shape); ``dims``: name -> the dim names of
    ``shape`` (``coords`` gives their values; a dim without coords counts from 0, as ArviZ's
    ``<var>_dim_<i>`` dims do); the group's attrs are ArviZ's (``created_at``, ``arviz_version``)
    and ``attrs``.
    """
    coords, dims = dict(coords or {}), dict(dims or {})
    variables, all_coords = {}, {}
    for name, values in posterior.items():
        values = np.asarray(values)
        names = ["chain", "draw", *(dims.get(name) or [f"{name}_dim_{i}" for i in range(values.ndim - 2)])]
        for dim, size in zip(names, values.shape):
            all_coords.setdefault(dim, coords[dim] if dim in coords else np.arange(size))
        variables[name] = (names, values)
    dataset = xr.Dataset(variables, coords=all_coords)
    dataset.attrs = {"created_at": datetime.datetime.now(datetime.UTC).isoformat(),
                     "arviz_version": importlib.metadata.version("arviz"), **(attrs or {})}
    return LazyInferenceData({"posterior": dataset})


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
        _write_group(buffer, xr.Dataset(attrs=idata.attrs), mode, "/", {})
        mode = "a"
    for group in idata.groups():
        data = idata[group]
        if group == "posterior" and posterior_attrs:
            data = data.copy()
            data.attrs = {**data.attrs, **posterior_attrs}
        encoding = {name: {"zlib": True} for name, values in data.variables.items() if _compressible(values.dtype)}
        _write_group(buffer, data, mode, f"//{group}", encoding)
        mode = "a"
    return buffer.getvalue()


def _write_group(buffer: io.BytesIO, data: xr.Dataset, mode: str, group: str, encoding: dict) -> None:
    """``data.to_netcdf(buffer, mode=mode, group=group, engine="h5netcdf", encoding=encoding)``, the same bytes.

    Through xarray's h5netcdf store with HDF5's global lock: ``to_netcdf`` asks Dask which
    scheduler runs (for a per-file lock this private buffer does not need), and that imports
    ``distributed`` (0.26 s of every process that saves a model; docs/domain.md, "Cost").
    """
    from xarray.backends import H5NetCDFStore
    from xarray.backends.locks import HDF5_LOCK

    store = H5NetCDFStore.open(buffer, mode=mode, lock=HDF5_LOCK)
    try:
        data.dump_to_store(store.get_child_store(group), encoding=encoding)
    finally:
        store.close()


def _compressible(dtype) -> bool:
    """ArviZ's rule for which variables ``to_netcdf`` compresses."""
    if dtype.kind == "V":
        return all(_compressible(item) for item, _ in dtype.fields.values())
    return dtype.kind in {"b", "i", "u", "f", "c", "S"}


def write_netcdf(idata, path: str | Path) -> None:
    """Write the InferenceData to ``path`` all-or-nothing (see :func:`netcdf_bytes`)."""
    from bayeslm.core.files import atomic_write_bytes

    atomic_write_bytes(path, netcdf_bytes(idata))


def read_netcdf(path: str | Path) -> LazyInferenceData:
    """Read an InferenceData fully into memory, as ``arviz.from_netcdf`` reads it but with xarray
    alone (a :class:`LazyInferenceData`); any failure is a :class:`ModelFileError`."""
    import h5netcdf

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: missing (not a bayeslm model directory?)")
    try:
        with h5netcdf.File(path, mode="r") as handle:
            names = list(handle.groups)
        groups = {}
        for name in names:
            with xr.open_dataset(path, group=f"//{name}", engine="h5netcdf") as data:
                groups[name] = data.load()
        with xr.open_dataset(path, group="/", engine="h5netcdf") as data:
            attrs = dict(data.load().attrs)
    except Exception as err:  # h5py/xarray raise many types for corrupt files
        raise ModelFileError(f"{path}: corrupt or truncated netCDF file ({type(err).__name__}: {err})") from None
    return LazyInferenceData(groups, attrs)


def sample_count(idata) -> int:
    post = idata["posterior"]
    return int(post.sizes["chain"] * post.sizes["draw"])


def posterior_draws(idata, var: str) -> np.ndarray:
    """Draws of a variable flattened over (chain, draw) to shape (samples, *var_shape)."""
    da = idata["posterior"][var]
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).values
