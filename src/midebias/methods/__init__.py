"""Training methods, found by name in METHODS."""

from midebias.methods.adversarial import LNL, BlindEye
from midebias.methods.base import Batch, Method
from midebias.methods.mi import MIDebias
from midebias.methods.vanilla import Vanilla

METHODS: dict[str, type[Method]] = {m.name: m for m in (Vanilla, MIDebias, BlindEye, LNL)}


def get_method(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


__all__ = ["Batch", "Method", "METHODS", "get_method", "Vanilla", "MIDebias", "BlindEye", "LNL"]
