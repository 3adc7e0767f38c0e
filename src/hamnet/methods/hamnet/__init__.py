"""HAM-Net: everything the method owns (network, hybrid attention, losses and their
config, ablation variants, presets, the method adapter)."""

from hamnet.methods.hamnet.method import HamNetMethod

__all__ = ["HamNetMethod"]
