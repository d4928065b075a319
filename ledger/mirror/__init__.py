"""The database mirror of the chain: its tables, the engine factory and the event indexer."""
