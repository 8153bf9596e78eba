"""Where readings come from: drivers (MQTT, serial) and the decoders of their payloads."""
