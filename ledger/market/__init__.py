"""The neighbourhood market: clearing (pure), household agents, settlement, statements, and
the queries that feed them from the mirror."""
