"""CO2-Net and DELU, which extends it: the network and loss terms (``network``), the
official test rule (``rule``), CO2-Net's method (``method``) and DELU's (``delu``)."""
