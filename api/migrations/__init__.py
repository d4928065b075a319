"""The database's schema migrations (Alembic), applied by :mod:`api.schema`.

``versions/`` holds one revision per schema change, each written against the schema before it,
never against the live models: ``r0001_baseline`` is the schema as the first release created
it, and each later revision says what changed. A test upgrades a database from the baseline
and compares the result with the models (:mod:`tests.api.test_schema`), so a model changed
without a revision fails it.
"""
