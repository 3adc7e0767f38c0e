"""The registry of WTAL methods: one line per method (name -> module:class).

Every method implements :class:`hamnet.methods.base.Method`; the config key ``method``
names one of these (default ``hamnet``). See docs/methods.md, "Adding a fourth method".
"""

from __future__ import annotations

import importlib

from hamnet.errors import ConfigError

METHODS = {
    "hamnet": "hamnet.methods.hamnet:HamNetMethod",
    "stpn": "hamnet.methods.stpn:StpnMethod",
    "w-talc": "hamnet.methods.wtalc:WtalcMethod",
    "basnet": "hamnet.methods.basnet:BasNetMethod",
    "co2net": "hamnet.methods.co2net:Co2NetMethod",
    "delu": "hamnet.methods.delu:DeluMethod",
}
# spellings accepted on input; configs store the registry name
ALIASES = {"wtalc": "w-talc", "bas-net": "basnet", "ham-net": "hamnet", "co2-net": "co2net"}


def canonical_method(name: str) -> str:
    """The registry name of ``name`` (aliases resolved); ConfigError if unknown."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in METHODS:
        raise ConfigError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    return key


def method_class(name: str):
    module, _, attribute = METHODS[canonical_method(name)].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_method(config):
    """The method named by ``config.method``, bound to ``config``."""
    return method_class(config.method)(config)
