"""hamnet: weakly-supervised temporal action localization (HAM-Net, AAAI 2021)."""

__version__ = "0.1.0"
