"""depotwatch: the gateway daemon that guards an arms and ammunition depot."""

__version__ = "0.1.0"
