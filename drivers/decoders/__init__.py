"""Payload decoders: one module per device family, registered in `drivers.decoders.kinds`."""
