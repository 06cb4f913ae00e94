from tests.support.postgres import postgres  # noqa: F401  (a fixture)
