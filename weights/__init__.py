"""Model weights and the registry that describes them (data only; see models/registry.py)."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent
DEFAULT_REGISTRY = WEIGHTS_DIR / "registry.toml"
