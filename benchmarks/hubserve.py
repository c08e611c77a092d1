"""The local test hub (tests/hubserver.py, issue 4) as a process for the remote benchmark rows.

    python -m benchmarks.hubserve REPOS_JSON     REPOS_JSON: {"org/name": "/folder", ...}

Prints the endpoint URL on one line, then serves (threaded) until its standard input closes.
GET /__benchmarks__/bytes answers {"org/name": body bytes sent, ...}.
Needs pytest-httpserver (the test extra); imports tests/hubserver.py from the repository.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from hubserver import FakeHub
    from pytest_httpserver import HTTPServer
    from werkzeug import Response

    class BenchHub(FakeHub):
        def handle(self, request):
            if request.path == "/__benchmarks__/bytes":
                with self.lock:
                    counts = {name: repo.bytes_sent for name, repo in self.repos.items()}
                return Response(json.dumps(counts), content_type="application/json")
            return super().handle(request)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    hub = BenchHub(server)
    for repo_id, folder in json.loads(argv[0]).items():
        hub.add(repo_id, Path(folder))
    print(hub.endpoint, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
