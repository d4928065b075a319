"""The Voisin contract from Python: compilation, deployment, the typed client and its events."""
