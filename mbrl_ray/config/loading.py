"""Presets, dotted overrides and validation with errors that name the key, the value and what is allowed."""
from __future__ import annotations

import copy
import dataclasses
import difflib
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from mbrl_ray.config.schema import Config, ConfigError


def _is_section(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def preset_dir() -> Path:
    return Path(str(resources.files("mbrl_ray.config") / "presets"))


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description (the YAML's `description`)."""
    out = {}
    for path in sorted(preset_dir().glob("*.yaml")):
        out[path.stem] = yaml.safe_load(path.read_text()).get("description", "")
    return out


def load_preset(name: str) -> Config:
    """A Config with the preset's values over the schema defaults."""
    names = list(list_presets())
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(names)}"
                          + _close(name, names))
    cfg = from_dict(_preset_values(name, names))
    cfg.preset = name
    return cfg


def _preset_values(name: str, names: list[str], below: tuple[str, ...] = ()) -> dict:
    """The preset's values over those of its `base` preset (recursively): a task variant states
    only what differs. Its description is its own."""
    raw = yaml.safe_load((preset_dir() / f"{name}.yaml").read_text())
    raw.pop("description", None)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if base not in names:
        raise ConfigError(f"preset {name!r}: base={base!r} is not a preset; allowed: "
                          f"{', '.join(names)}" + _close(str(base), names))
    if base == name or base in below:
        chain = " -> ".join((*below, name, base))
        raise ConfigError(f"preset {name!r}: base={base!r} makes a cycle ({chain})")
    return _merged(_preset_values(base, names, (*below, name)), raw)


def _merged(under: dict, over: dict) -> dict:
    """`under` with `over`'s keys set on it, section by section."""
    out = dict(under)
    for key, value in over.items():
        both_sections = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both_sections else value
    return out


def from_dict(raw: dict) -> Config:
    """Build a Config from nested dicts (a preset or a saved config.yaml), checking every key."""
    cfg = Config()
    for key, value in _flatten(raw).items():
        set_key(cfg, key, value)
    return cfg


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of `cfg` with `key.sub=value` strings applied (values parsed as YAML scalars,
    then type-checked); `cfg` itself is left as it was."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        key, text = (part.strip() for part in item.split("=", 1))
        if not key:
            raise ConfigError(f"override {item!r} has no key before '='; expected key.sub=value")
        set_key(cfg, key, _parse_value(cfg, key, text))
    return cfg


def _parse_value(cfg: Config, key: str, text: str) -> Any:
    """A YAML scalar or list; for a string key the text as typed (`env.id=dmc:` is the string
    'dmc:', not YAML's mapping {'dmc': None}), unquoted if quoted."""
    if not text:
        return ""
    if _leaf_type(cfg, key) is str and not text.startswith(("'", '"')):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{key}={text!r} cannot be read as a value (YAML): quote it or "
                          "fix its brackets") from None


def _leaf_type(cfg: Config, dotted: str) -> Any:
    """The schema type of a dotted key, None for a key the schema lacks (set_key names it)."""
    node = cfg
    *path, leaf = dotted.split(".")
    for part in path:
        node = getattr(node, part, None)
        if not _is_section(node):
            return None
    if leaf not in {f.name for f in dataclasses.fields(node)}:
        return None
    return get_type_hints(type(node)).get(leaf)


def get_key(cfg: Config, dotted: str) -> Any:
    """The value of one dotted key; ConfigError for a section or a key the schema lacks."""
    node = cfg
    for part in dotted.split("."):
        if not _is_section(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise ConfigError(f"unknown key {dotted!r}")
        node = getattr(node, part)
    if _is_section(node):
        raise ConfigError(f"{dotted!r} is a section, not a key")
    return node


def set_key(cfg: Config, dotted: str, value: Any) -> None:
    """Set one dotted key, converting int->float where the schema wants a float."""
    *path, leaf = dotted.split(".")
    node = cfg
    for i, part in enumerate(path):
        sections = [f.name for f in dataclasses.fields(node) if _is_section(getattr(node, f.name))]
        if part not in sections:
            prefix = ".".join(path[:i])
            raise ConfigError(f"unknown key {dotted!r}: no section {part!r}"
                              + (f" in {prefix!r}" if prefix else "")
                              + f"; sections: {', '.join(sections)}" + _close(part, sections))
        node = getattr(node, part)
    hints = get_type_hints(type(node))
    leaves = [f.name for f in dataclasses.fields(node) if not _is_section(getattr(node, f.name))]
    if leaf not in leaves:
        known = [".".join(path + [n]) for n in leaves]
        raise ConfigError(f"unknown key {dotted!r}; allowed keys here: {', '.join(known)}"
                          + _close(dotted, known))
    setattr(node, leaf, _coerce(dotted, value, hints[leaf]))


def _coerce(key: str, value: Any, want: type) -> Any:
    if get_origin(want) is list:
        (item,) = get_args(want)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} has type {type(value).__name__}; expected a "
                              f"list of {item.__name__} (e.g. {key}=[5,3])")
        return [_coerce(key, v, item) for v in value]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if want is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if type(value) is not want:
        raise ConfigError(f"{key}={value!r} has type {type(value).__name__}; "
                          f"expected {want.__name__}")
    return value


def _flatten(raw: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _close(word: str, options: list[str]) -> str:
    near = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def iter_fields(cfg: Config):
    """(dotted key, value, help, choices) for every leaf of the config, in schema order."""
    for key, value, meta in iter_field_metadata(cfg):
        yield key, value, meta.get("help", ""), meta.get("choices")


def iter_field_metadata(cfg: Config):
    """(dotted key, value, the field's metadata: help, choices, bound, upper) for every leaf."""
    for section in dataclasses.fields(cfg):
        node = getattr(cfg, section.name)
        if not _is_section(node):
            yield section.name, node, section.metadata
            continue
        for f in dataclasses.fields(node):
            yield f"{section.name}.{f.name}", getattr(node, f.name), f.metadata
