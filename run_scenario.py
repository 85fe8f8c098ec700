#!/usr/bin/env python3
"""Run CityTwin scenarios: ``python run_scenario.py run scenarios/bad_hersfeld.yaml`` (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from twin.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
