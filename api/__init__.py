"""Voisin API service and the `voisin` command (the composition root)."""
