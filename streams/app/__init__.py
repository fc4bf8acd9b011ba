"""swarmstream's own graph on the engine: the topology (every topic, table and handler), each
capability's wiring, settings, the worker process and the broker's security settings."""
