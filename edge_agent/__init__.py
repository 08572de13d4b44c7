"""Edge agent: local intake, durable outbox, MQTT uplink."""
