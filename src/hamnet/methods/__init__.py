"""The registry of WTAL methods: one line per method (name -> module:class).

Every method implements :class:`hamnet.methods.base.Method`; the config key ``method``
names one of these (default ``hamnet``). A method's module holds everything about it: the
network, its options dataclass, its loss terms, its table label (``Method.label``) and
its values per dataset preset (a module-level ``PRESETS`` dict: ``"*"`` for every
dataset, then a preset's name). Code outside this package adds one with
:func:`register_method`. See docs/methods.md, "Adding a method".
"""

from __future__ import annotations

import importlib
import sys

from hamnet.errors import ConfigError

METHODS: dict[str, str | type] = {
    "hamnet": "hamnet.methods.hamnet.method:HamNetMethod",
    "stpn": "hamnet.methods.stpn:StpnMethod",
    "w-talc": "hamnet.methods.wtalc:WtalcMethod",
    "basnet": "hamnet.methods.basnet:BasNetMethod",
    "co2net": "hamnet.methods.co2net.method:Co2NetMethod",
    "delu": "hamnet.methods.co2net.delu:DeluMethod",
    "3cnet": "hamnet.methods.threecnet:ThreeCNetMethod",
    "pmil": "hamnet.methods.pmil:PmilMethod",
    "dgam": "hamnet.methods.dgam:DgamMethod",
    "student": "hamnet.methods.student.method:StudentMethod",
    "cmcs": "hamnet.methods.cmcs:CmcsMethod",
}
# spellings accepted on input; configs store the registry name
ALIASES = {
    "wtalc": "w-talc",
    "bas-net": "basnet",
    "ham-net": "hamnet",
    "co2-net": "co2net",
    "3c-net": "3cnet",
    "p-mil": "pmil",
    "fustal": "student",
}


def register_method(name: str, target: str | type, aliases: tuple[str, ...] = ()) -> None:
    """Add the method ``name``: ``target`` is its Method class or ``"module:Class"``."""
    key = name.lower()
    if key in METHODS or key in ALIASES:
        raise ConfigError(f"method {name!r} is registered already")
    METHODS[key] = target
    ALIASES.update({alias.lower(): key for alias in aliases})


def canonical_method(name: str) -> str:
    """The registry name of ``name`` (aliases resolved); ConfigError if unknown."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in METHODS:
        raise ConfigError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    return key


def method_class(name: str):
    target = METHODS[canonical_method(name)]
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def method_presets(name: str) -> dict:
    """The method's values per dataset preset: its module's ``PRESETS`` ({} if none)."""
    return getattr(sys.modules[method_class(name).__module__], "PRESETS", {})


def method_label(name: str) -> str:
    """The method's name in tables (``Method.label``, else its registry name)."""
    cls = method_class(name)
    return cls.label or cls.name


def make_method(config):
    """The method named by ``config.method``, bound to ``config``."""
    return method_class(config.method)(config)
