import sys
from pathlib import Path

# Test helpers (zoo, helpers) live next to the tests and are imported by name.
sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def server():
    """A real HTTP server on 127.0.0.1 for the fake Hub (tests/hubserver.py), one per test module."""
    from pytest_httpserver import HTTPServer

    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    yield srv
    srv.stop()
