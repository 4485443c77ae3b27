"""JSON responses encoded by msgspec: a timeline page is fifty documents, and the
standard library's encoder was a tenth of the time of such a request."""

from __future__ import annotations

from typing import Any

import msgspec
from flask.json.provider import DefaultJSONProvider


class JSONProvider(DefaultJSONProvider):
    """Flask's provider with msgspec's encoder: key order kept, text as UTF-8 (not
    ``\\u`` escapes); anything msgspec does not know goes through Flask's ``default``.
    Decoding stays with the standard library, whose error messages the problem details
    quote."""

    sort_keys = False
    ensure_ascii = False

    def __init__(self, app: Any):
        super().__init__(app)
        self._encoder = msgspec.json.Encoder(enc_hook=self.default)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        return self._encoder.encode(obj).decode()

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._encoder.encode(obj), mimetype=self.mimetype)
