"""The pages' bidi guard (viewer/middleware.py) over what a browser reads: compressed bodies too."""
import gzip
import json
import random

from django.http import JsonResponse
from django.test import RequestFactory

from viewer.middleware import _RAW, InertBidiMiddleware


def _gzipped_json_whose_compressed_bytes_hold_an_override():
    """Plain ASCII JSON whose gzip stream holds, by chance, the UTF-8 bytes of a bidi control."""
    rng = random.Random(7)
    for _ in range(5_000):
        payload = {"frames": ["".join(rng.choice("abcdefghij klmnop") for _ in range(2000))]}
        packed = gzip.compress(json.dumps(payload).encode(), mtime=0)
        if _RAW.search(packed):
            return payload, packed
    raise AssertionError("no such payload found")


def test_a_gzipped_frames_answer_is_made_inert_as_text_not_edited_as_compressed_bytes():
    payload, packed = _gzipped_json_whose_compressed_bytes_hold_an_override()
    response = JsonResponse(payload)
    response.content, response["Content-Encoding"] = packed, "gzip"
    out = InertBidiMiddleware(lambda request: response)(RequestFactory().get("/runs/1/replay/frames/"))
    assert json.loads(gzip.decompress(out.content)) == payload  # still a valid stream, the same JSON


def test_an_override_inside_a_gzipped_frames_answer_is_shown_as_its_code_point():
    response = JsonResponse({"frames": ["a\u202eb"]})
    response.content, response["Content-Encoding"] = gzip.compress(response.content), "gzip"
    out = InertBidiMiddleware(lambda request: response)(RequestFactory().get("/runs/1/replay/frames/"))
    assert json.loads(gzip.decompress(out.content)) == {"frames": ["a<U+202E>b"]}
