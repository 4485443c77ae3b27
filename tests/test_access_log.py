"""The access log of ``timeline serve``: gunicorn's own line, made from only the values
the format uses, and never a header."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from api.access_log import ACCESS_LOG_FORMAT, AccessLog

TOKEN = "tok_secret-value"


class Response:
    """What gunicorn's response offers its logger."""

    def __init__(self, status: str | int, sent: int | None):
        self.status, self.sent = status, sent
        self.headers = [("Content-Type", "application/json"), ("ETag", '"3"')]


class Request:
    headers = [("HOST", "127.0.0.1:5000"), ("AUTHORIZATION", f"Bearer {TOKEN}"), ("USER-AGENT", "curl/8")]


def line(logger_class: type[glogging.Logger], path: Path, resp: Response, uri: str, seconds: float) -> str:
    config = Config()
    config.set("accesslog", str(path))
    config.set("access_log_format", ACCESS_LOG_FORMAT)
    logger = logger_class(config)
    environ = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "POST", "RAW_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": uri.split("?")[0], "QUERY_STRING": "", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    logger.access(resp, Request(), environ, timedelta(seconds=seconds))
    for handler in logger.access_log.handlers:
        handler.close()
    return path.read_text()


@pytest.mark.parametrize("status, sent, uri, seconds", [
    ("201 CREATED", 1834, "/api/v1/developments", 0.012345),
    ("412 PRECONDITION FAILED", 260, "/api/v1/developments/x/corrections?a=1&b=%C3%A9", 1.5),
    ("304 NOT MODIFIED", None, "/api/v1/timeline", 0),
    (500, 0, "/api/v1/events", 61.000001),
])
def test_the_line_is_the_one_gunicorns_logger_writes_without_its_headers(tmp_path, status, sent, uri, seconds):
    ours = line(AccessLog, tmp_path / "ours.log", Response(status, sent), uri, seconds)
    gunicorns = line(glogging.Logger, tmp_path / "gunicorn.log", Response(status, sent), uri, seconds)
    assert ours == gunicorns and ours.startswith(f'127.0.0.1 "POST {uri} HTTP/1.1" {str(status).split()[0]} ')
    assert ours.endswith(f" {'-' if sent is None else sent} {seconds:.6f}s\n") and TOKEN not in ours
