"""Home Assistant: MQTT discovery of the depot's storehouses, doors, climate and alarm counts."""
