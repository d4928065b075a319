"""The dashboard's texts in both languages, one module per page (and one shared): each maps a
key to ``(English, French)``. :mod:`api.web.i18n` merges them and refuses a key defined twice."""
