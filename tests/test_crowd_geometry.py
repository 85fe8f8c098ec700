"""Venue geometry, navigation fields, density, levels of service and warnings."""
import json

import numpy as np

from agents.crowd.density import DensityGrid, fruin_los
from agents.crowd.distance_field import navigation_field
from agents.crowd.geometry import VenueGeometry, load_geojson, parse_wkt_polygons, rasterise
from agents.crowd.warnings import WarningTracker


def test_exit_opening_and_walls():
    """An exit cuts its width out of the boundary wall; the apron beyond it is walkable and tagged."""
    g = VenueGeometry.build([(0, 0), (10, 0), (10, 5), (0, 5)], exits=[("e", (10, 2.5), 2.0)])
    e = g.exits[0]
    assert np.isclose(e.width_m, 2.0) and np.allclose(e.normal, (1, 0))
    segs = g.wall_segments()
    east = segs[(np.isclose(segs[:, 0], 10) & np.isclose(segs[:, 2], 10))]
    assert np.isclose(np.abs(east[:, 3] - east[:, 1]).sum(), 3.0)  # 5 m wall minus 2 m opening
    r = rasterise(g, 0.1)
    assert (r.exit_id == 0).sum() > 0 and r.walkable[r.exit_id == 0].all()
    assert not r.inside[r.exit_id == 0].any()


def test_distance_field_goes_around_an_obstacle():
    """Fast marching: distance grows like Euclidean in the open and is longer behind an obstacle."""
    g = VenueGeometry.build([(0, 0), (20, 0), (20, 10), (0, 10)], obstacles=[[(9, 0.5), (11, 0.5), (11, 9.5), (9, 9.5)]],
                            exits=[("e", (20, 5), 1.0)])
    r = rasterise(g, 0.2)
    T, gx, gy = navigation_field(r.walkable, r.exit_id >= 0, r.h, clearance_m=0.0)
    iy, ix = r.cell_of(np.array([15.0, 5.0]), np.array([5.0, 5.0]))
    assert abs(T[iy[0], ix[0]] - 5.0) < 0.5  # straight 5 m to the exit
    assert T[iy[1], ix[1]] > 15.0 + 2.0  # must go around the wall
    assert np.allclose(np.hypot(gx, gy)[np.isfinite(T) & (T > 0.5)], 1.0, atol=1e-5)


def test_wkt_and_geojson_loaders(tmp_path):
    """WKT holes become obstacles; GeoJSON features give polygon, obstacles, walls and exits."""
    polys = parse_wkt_polygons("POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (4 4, 6 4, 6 6, 4 6, 4 4))")
    assert len(polys) == 1 and len(polys[0]) == 2 and polys[0][1].shape == (5, 2)
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"role": "walkable"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}},
        {"type": "Feature", "properties": {"role": "obstacle"},
         "geometry": {"type": "Polygon", "coordinates": [[[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]]}},
        {"type": "Feature", "properties": {"role": "exit", "name": "gate", "width_m": 2.5, "node": 3},
         "geometry": {"type": "Point", "coordinates": [10, 5]}}]}
    p = tmp_path / "v.geojson"
    p.write_text(json.dumps(fc))
    d = load_geojson(p)
    assert len(d["polygon"]) == 5 and len(d["obstacles"]) == 1
    assert d["exits"] == [{"name": "gate", "at": [10, 5], "width_m": 2.5, "node": 3}]


def test_density_grid_and_fruin():
    """Density counts per walkable m²; Fruin letters follow the walkway thresholds."""
    g = VenueGeometry.build([(0, 0), (4, 0), (4, 4), (0, 4)])
    r = rasterise(g, 0.1)
    dg = DensityGrid.for_raster(r, 1.0, 2.0)
    x = np.array([0.5, 0.6, 0.7, 2.5])
    y = np.array([0.5, 0.5, 0.5, 2.5])
    d = dg.density(x - 0.0, y)
    iy, ix = int((0.5 - dg.y0) // 1.0), int((0.5 - dg.x0) // 1.0)
    assert np.isclose(np.nansum(d * dg.area_m2), 4.0)
    assert d[iy, ix] >= 3.0 / dg.area_m2[iy, ix] - 1e-9
    assert list(fruin_los([0.1, 0.35, 0.5, 1.0, 2.0, 3.0])) == list("ABCDEF")


def test_warning_needs_duration_and_records_episode():
    """A level is raised only after density stays above it for the duration; the episode keeps its peak."""
    tr = WarningTracker("v", {"warn": 4.0, "critical": 5.5}, duration_s=5.0)
    raised = []
    series = [3.0, 4.5, 4.6, 3.9, 4.2, 4.8, 5.0, 6.0, 5.2, 4.1, 3.0]
    for t, rho in enumerate(series):
        raised += tr.update(float(t), rho, t, 0.0)
    tr.close(len(series))
    assert [w.level for w in raised] == ["warn"]  # the 1-2 s blip and the 2 s above 5.5 raise nothing
    w = tr.warnings[0]
    assert (w.start_s, w.end_s, w.peak_density, w.raised_s) == (4.0, 10.0, 6.0, 9.0)
