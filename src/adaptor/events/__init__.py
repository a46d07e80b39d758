"""Events: the transactional outbox, the relay that publishes it, and the sinks it publishes to."""
