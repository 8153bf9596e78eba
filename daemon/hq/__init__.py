"""HQ supervision: the heartbeat every gateway publishes, and `depotwatch hq` that watches them."""
