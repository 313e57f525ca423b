from tests.backends import pg_url, store_url

__all__ = ["pg_url", "store_url"]
