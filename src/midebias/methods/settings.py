"""Typed settings: one frozen dataclass per method, every setting's default, allowed values
and help in one place, presets as named instances of that dataclass.

    @dataclass(frozen=True)
    class MySettings(Settings):
        alpha: float = setting(1.0, "weight of the extra loss", low=0)

    MySettings.resolve({"alpha": "2"})   # from the command line: text is parsed
    MySettings(alpha=-1)                 # SettingError: alpha must be >= 0, got -1

A class with presets has a ``preset`` field (whose default names the default preset, the
instance its field defaults describe) and a ``PRESETS`` dict of named instances;
``resolve({"preset": "paper", "lambda_": 2})`` starts from the "paper" instance and then
applies the other values. Every instance is checked when it is made, however it is made.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["SettingError", "Settings", "setting", "setting_key"]


class SettingError(ValueError):
    """A setting has no such name, a wrong type or a value out of range.

    ``name`` is the setting's name, ``problem`` the reason without the name (so that the
    command line can speak of ``--set NAME=VALUE`` and the library of the parameter)."""

    def __init__(self, owner: str, name: str, problem: str):
        self.owner, self.name, self.problem = owner, name, problem
        super().__init__(f"{owner} setting {name}: {problem}")


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
) -> Any:
    """A dataclass field with its help and allowed values: `choices`, or a range
    (``low <= v``, ``above < v``, ``v <= high``)."""
    meta = {"help": help, "choices": choices, "low": low, "above": above, "high": high}
    return dataclasses.field(default=default, metadata=meta)


def setting_key(key: str) -> str:
    """The field name for a key as typed on a command line: dashes become underscores and
    a Python keyword gets the trailing underscore its field carries (lambda -> lambda_)."""
    key = key.strip().replace("-", "_")
    return key + "_" if keyword.iskeyword(key) else key


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _parse(kind: type, value: Any) -> Any:
    """`value` as `kind`, parsing text; TypeError/ValueError with the reason if it is not."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expects true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(f"expects a whole number, got {value!r}")
        if isinstance(value, str):
            value = value.strip()
            if not value.lstrip("+-").isdigit():
                raise ValueError(f"expects a whole number, got {value!r}")
            return int(value)
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
        raise ValueError(f"expects a whole number, got {value!r}")
    if kind is float:
        if isinstance(value, bool):
            raise ValueError(f"expects a number, got {value!r}")
        try:
            out = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"expects a number, got {value!r}") from None
        if not math.isfinite(out):
            raise ValueError(f"must be a finite number, got {value}")
        return out
    if not isinstance(value, str):
        raise ValueError(f"expects text, got {value!r}")
    return value.strip()


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every method's settings (see the module doc)."""

    #: Named instances; empty for a method without presets.
    PRESETS: ClassVar[dict[str, Settings]] = {}
    #: Used in messages ("mi setting lambda_: ...").
    OWNER: ClassVar[str] = "method"
    #: Settings added after runs were first recorded, each with the value that does what
    #: runs made before it did (`--resume` reads a saved config that lacks one as that).
    ADDED: ClassVar[dict[str, Any]] = {}

    @classmethod
    def completed(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """A run's saved settings with each setting added since read as its `ADDED` value."""
        return {**{k: v for k, v in cls.ADDED.items() if k not in saved}, **saved}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                value = _parse(hints[f.name], value)
            except ValueError as e:
                raise SettingError(self.OWNER, f.name, str(e)) from None
            object.__setattr__(self, f.name, value)
            meta = f.metadata
            problem = None
            if meta.get("choices") is not None and value not in meta["choices"]:
                problem = f"must be one of {', '.join(map(str, meta['choices']))}; got {value!r}"
            elif meta.get("low") is not None and value < meta["low"]:
                problem = f"must be >= {meta['low']:g}, got {value}"
            elif meta.get("above") is not None and value <= meta["above"]:
                problem = f"must be > {meta['above']:g}, got {value}"
            elif meta.get("high") is not None and value > meta["high"]:
                problem = f"must be <= {meta['high']:g}, got {value}"
            if problem:
                raise SettingError(self.OWNER, f.name, problem)
        self.check()

    def check(self) -> None:
        """Checks that involve several settings (raise SettingError); none by default."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def resolve(cls, values: Mapping[str, Any] | Settings | None = None) -> Settings:
        """An instance from a preset (``values["preset"]``, else the default) updated with
        the other `values` (keys as fields or as typed on a command line, e.g. "lambda")."""
        if isinstance(values, cls):
            return values
        given = {setting_key(k): v for k, v in dict(values or {}).items()}
        unknown = sorted(set(given) - set(cls.names()))
        if unknown:
            raise SettingError(
                cls.OWNER,
                ", ".join(unknown),
                f"no such setting; its settings: {', '.join(cls.names()) or 'none'}",
            )
        base = cls()
        if "preset" in given:
            name = _parse(str, given["preset"])
            if name not in cls.PRESETS:
                raise SettingError(
                    cls.OWNER, "preset", f"no preset {name!r}; presets: {', '.join(cls.PRESETS)}"
                )
            base = cls.PRESETS[name]
        return dataclasses.replace(base, **{k: v for k, v in given.items() if k != "preset"})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> str:
        """One line per setting: name, default, allowed values and help (for --help)."""
        lines = []
        for f in dataclasses.fields(cls):
            m = f.metadata
            allowed = ""
            if m.get("choices"):
                allowed = " {" + ",".join(map(str, m["choices"])) + "}"
            lines.append(f"  {f.name} = {f.default!r}{allowed}: {m.get('help', '')}")
        if cls.PRESETS:
            lines.append(f"  presets: {', '.join(cls.PRESETS)}")
        return "\n".join(lines)
