"""Build the city graph a scenario names (network, zones, points of interest), cached per process."""
from __future__ import annotations

import json
from pathlib import Path

from networks import CityGraph
from twin.scenario import CityConfig, resolve_data_path

__all__ = ["build_city"]

_CACHE: dict[str, CityGraph] = {}


def build_city(cfg: CityConfig, base_dir: Path, default_name: str = "city") -> CityGraph:
    """Load or build the road network, attach zones and POIs. Variants of one scenario share the result."""
    # keyed by the files it reads (resolved), so scenarios in different folders naming the same files share it
    spec = cfg.model_dump(mode="json")
    for k in ("path", "pois", "buildings"):
        if spec.get(k):
            spec[k] = str(resolve_data_path(spec[k], base_dir))
    key = json.dumps([spec, cfg.name or default_name], sort_keys=True)
    if key in _CACHE:
        return _CACHE[key]
    from networks import synthetic
    from networks.zones import attach_zones, building_zones, grid_zones

    name = cfg.name or default_name
    path = resolve_data_path(cfg.path, base_dir) if cfg.path else None
    if cfg.source == "sumo":
        from networks.sumo_net import load_sumo_net

        assert path is not None  # CityConfig requires a path for sumo and osm
        city = load_sumo_net(path, name=name, capacity_per_lane_vph=cfg.capacity_per_lane_vph)
    elif cfg.source == "osm":
        from networks.osm import load_osm

        assert path is not None
        city = load_osm(path, name=name, capacity_per_lane_vph=cfg.capacity_per_lane_vph)
    elif cfg.source == "grid":
        g = cfg.grid
        city = synthetic.grid(g.nx, g.ny, g.spacing_m, g.lanes, g.speed_mps, cfg.capacity_per_lane_vph, name=name)
    elif cfg.source == "radial":
        r = cfg.radial
        city = synthetic.radial(r.rings, r.spokes, r.ring_spacing_m)
        city.name = name
    else:
        ln = cfg.line
        city = synthetic.line(ln.n_links, ln.length_m, ln.lanes, ln.speed_mps, cfg.capacity_per_lane_vph)
        city.name = name
    if cfg.buildings:
        zones = building_zones(city, resolve_data_path(cfg.buildings, base_dir), cfg.zone_cell_m)
        city.zone_weight_kind = "building_area_m2"
    else:
        zones = grid_zones(city, cfg.zone_cell_m)
    attach_zones(city, zones)
    pois_path = cfg.pois or (cfg.path if cfg.source == "osm" else None)
    if pois_path and getattr(city, "lonlat_to_xy", None) is not None:
        from networks.osm_pois import load_osm_pois

        city.pois = load_osm_pois(resolve_data_path(pois_path, base_dir), city)
    _CACHE[key] = city
    return city
