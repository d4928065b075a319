"""One module per resource; :mod:`api.app` includes their routers."""
