"""Results files keep what they mean: integer variables padded with NaN stay NaN after a write."""


def test_integers_read_back_and_padded_with_nan_stay_nan(tmp_path):
    """A variant's integer variable, read from its file and padded with NaN when stacked with a longer one, must
    come back as NaN, not as an arbitrary integer (netCDF has no NaN for integers)."""
    import numpy as np
    import xarray as xr

    from twin.results import write_atomic

    xr.Dataset({"k": ("trip", np.array([1, 2, 3], np.int64))}, coords={"trip": [0, 1, 2]}).to_netcdf(tmp_path / "a.nc")
    a = xr.load_dataset(tmp_path / "a.nc")
    b = xr.Dataset({"k": ("trip", np.array([4, 5, 6, 7], np.int64))}, coords={"trip": [0, 1, 2, 3]})
    both = xr.concat([a, b], dim="variant", join="outer")  # a padded with NaN at trip 3
    assert both["k"].encoding.get("dtype") == np.dtype("int64")
    write_atomic(both, tmp_path / "both.nc")
    back = xr.load_dataset(tmp_path / "both.nc")
    assert np.isnan(back["k"].values[0, 3]) and back["k"].values[1].tolist() == [4, 5, 6, 7]
