"""Voisin meter simulator: neighbourhood scenarios and signing smart meters (issue 3)."""
