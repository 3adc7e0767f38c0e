"""Stand-in modules for a reference code's imports it does not need on the CPU."""

import sys
import types


def stub(name, **attrs):
    """Register an empty module ``name`` holding ``attrs`` (a reference code's unused import)."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module
