"""The InferenceData a model directory is read into without ArviZ (:class:`bayeslm.core.idata.LazyInferenceData`)."""

from __future__ import annotations

import copy

import arviz as az
import numpy as np
import pytest
import xarray as xr
from arviz.data.inference_data import SUPPORTED_GROUPS_ALL

from bayeslm.core.idata import GROUP_ORDER, from_draws, netcdf_bytes, read_netcdf


def test_group_order_is_arviz_order():
    assert list(GROUP_ORDER) == list(SUPPORTED_GROUPS_ALL)


@pytest.mark.parametrize("family", ["dirichlet", "pitman_yor", "gpt"])
def test_read_netcdf_gives_what_arviz_reads(family, request):
    """Every group, variable, coordinate (token labels included) and attr as ``arviz.from_netcdf`` reads
    them, in the same order."""
    path = request.getfixturevalue(f"{family}_dir") / "model.nc"
    lazy, reference = read_netcdf(path), az.from_netcdf(path, engine="h5netcdf")
    assert lazy.groups() == reference.groups()
    for group in reference.groups():
        assert lazy[group].identical(reference[group].load()), group
    assert dict(lazy.attrs) == dict(reference.attrs)
    assert lazy._wrapped is None  # reading and item access built no InferenceData


def test_lazy_idata_is_an_inference_data_to_every_caller(dirichlet_dir):
    lazy = read_netcdf(dirichlet_dir / "model.nc")
    posterior = lazy["posterior"]
    assert lazy.posterior is posterior and "posterior" in lazy and lazy._wrapped is None
    assert isinstance(lazy, az.InferenceData)  # builds it, from the same Datasets
    assert lazy._wrapped is not None and lazy.posterior is posterior and lazy["posterior"] is posterior
    assert az.summary(lazy, var_names=["concentration"]).shape[0] == 3
    assert type(copy.deepcopy(lazy)) is az.InferenceData and type(copy.copy(lazy)) is az.InferenceData
    assert netcdf_bytes(lazy) == netcdf_bytes(az.from_netcdf(dirichlet_dir / "model.nc", engine="h5netcdf"))


def test_from_draws_is_arviz_from_dict():
    draws = np.random.default_rng(0).gamma(1.0, size=(2, 7, 3))
    ours = from_draws({"power": draws, "other": draws[..., 0]}, coords={"order": np.arange(1, 4)},
                      dims={"power": ["order"]}, attrs={"inference_method": "exact"})
    theirs = az.from_dict(posterior={"power": draws, "other": draws[..., 0]}, coords={"order": np.arange(1, 4)},
                          dims={"power": ["order"]})
    theirs["posterior"].attrs["inference_method"] = "exact"
    assert ours.groups() == theirs.groups() == ["posterior"]
    assert ours["posterior"].drop_attrs().identical(theirs["posterior"].drop_attrs())
    assert {k: v for k, v in ours["posterior"].attrs.items() if k != "created_at"} == \
        {k: v for k, v in theirs["posterior"].attrs.items() if k != "created_at"}


def test_groups_are_added_and_replaced_without_arviz():
    lazy = from_draws({"a": np.zeros((1, 2))})
    lazy.add_groups({"constant_data": lazy["posterior"].isel(chain=0)})
    with pytest.raises(ValueError, match="already exist"):
        lazy.add_groups({"posterior": lazy["posterior"]})
    del lazy.constant_data
    assert lazy.groups() == ["posterior"] and lazy._wrapped is None


def _xarray_netcdf_bytes(idata) -> bytes:
    """The file as ``Dataset.to_netcdf`` writes it group by group (what :func:`netcdf_bytes` must equal)."""
    import io

    from bayeslm.core.idata import _compressible

    buffer, mode = io.BytesIO(), "w"
    if idata.attrs:
        xr.Dataset(attrs=idata.attrs).to_netcdf(buffer, mode=mode, group="/", engine="h5netcdf")
        mode = "a"
    for group in idata.groups():
        data = idata[group]
        encoding = {name: {"zlib": True} for name, values in data.variables.items() if _compressible(values.dtype)}
        data.to_netcdf(buffer, mode=mode, group=f"//{group}", engine="h5netcdf", encoding=encoding)
        mode = "a"
    return buffer.getvalue()


@pytest.mark.parametrize("family", ["dirichlet", "pitman_yor", "gpt"])
def test_netcdf_bytes_are_what_to_netcdf_writes(family, request):
    """Written through xarray's h5netcdf store (no Dask scheduler lookup), byte for byte ``to_netcdf``'s file."""
    idata = read_netcdf(request.getfixturevalue(f"{family}_dir") / "model.nc")
    idata.attrs["note"] = "root attrs are written too"
    assert netcdf_bytes(idata) == _xarray_netcdf_bytes(idata)
