"""Configuration: typed schema, YAML presets, dotted overrides, validation."""
from mbrl_ray.config.loading import (ConfigError, apply_overrides, from_dict, get_key,
                                     iter_fields, list_presets, load_preset, to_dict)
from mbrl_ray.config.schema import Config
from mbrl_ray.config.validate import check_machine, validate

__all__ = ["Config", "ConfigError", "apply_overrides", "from_dict", "get_key", "iter_fields",
           "list_presets", "load_preset", "to_dict", "validate", "check_machine"]
