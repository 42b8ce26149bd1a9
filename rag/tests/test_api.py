import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from rag.models import DocStatus, Document
from rag.tests import documents
from tests.api_client import assert_error, bearer


def _multipart(token):
    return Client(headers=bearer(token))


def test_multipart_upload_reports_each_file(alice, alice_collection, token_for, settings):
    client = _multipart(token_for(alice, "write"))
    response = client.post(
        f"/api/collections/{alice_collection.pk}/documents/",
        {
            "file": [
                SimpleUploadedFile("notes.md", b"# Notes\n\nhello"),
                SimpleUploadedFile("photo.pdf", documents.png()),
                SimpleUploadedFile("again.md", b"# Notes\n\nhello"),
            ]
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [(o["name"], o["status"]) for o in body] == [
        ("notes.md", "added"),
        ("photo.pdf", "refused"),
        ("again.md", "duplicate"),
    ]
    assert "PNG image" in body[1]["message"]
    assert Document.objects.filter(collection=alice_collection).count() == 1


def test_an_oversize_upload_is_cut_off_while_reading(alice, alice_collection, token_for, settings):
    settings.WORKBENCH_MAX_UPLOAD_BYTES = 64 * 1024
    client = _multipart(token_for(alice, "write"))
    response = client.post(
        f"/api/collections/{alice_collection.pk}/documents/",
        {"file": [SimpleUploadedFile("big.txt", b"x" * (256 * 1024))]},
    )
    assert response.status_code == 400, response.content
    assert response.json()[0]["status"] == "refused" and "limit" in response.json()[0]["message"]
    assert not Document.objects.exists()


def test_paste_status_and_search_over_the_api(alice, alice_collection, api_for, ingest):
    api = api_for(alice)
    created = api.post(
        f"/api/collections/{alice_collection.pk}/documents/",
        {"text": "Walruses nap on ice floes.", "title": "Walrus"},
    )
    assert created.status_code == 201 and created.json()[0]["document"]["title"] == "Walrus"
    assert api.get(f"/api/collections/{alice_collection.pk}/status/").json()["active"] == 1
    ingest()
    status = api.get(f"/api/collections/{alice_collection.pk}/status/").json()
    assert status["counts"][DocStatus.READY] == 1 and status["progress"] == 100
    found = api.post(
        f"/api/collections/{alice_collection.pk}/search/", {"query": "walruses", "mode": "text"}
    )
    assert found.status_code == 200
    assert found.json()["hits"][0]["highlight"].startswith("<mark>Walruses</mark>")


def test_bad_search_input_is_a_clear_400(alice, alice_collection, api_for):
    api = api_for(alice)
    assert_error(
        api.post(f"/api/collections/{alice_collection.pk}/search/", {"query": "x", "top_k": 999}),
        400,
        "invalid",
    )
    assert_error(
        api.post(
            f"/api/collections/{alice_collection.pk}/documents/", {"text": "a", "url": "https://x"}
        ),
        400,
        "invalid",
    )
    assert_error(api.post("/api/collections/", {"name": "x", "chunk_size": 5}), 400, "invalid")


def test_a_url_outside_the_egress_rules_fails_with_a_reason(
    alice, alice_collection, api_for, ingest
):
    api = api_for(alice)
    response = api.post(
        f"/api/collections/{alice_collection.pk}/documents/", {"url": "http://127.0.0.1:9/secret"}
    )
    assert response.status_code == 201
    ingest()
    document = Document.objects.get(collection=alice_collection)
    assert document.status == DocStatus.FAILED and "Can't fetch this address" in document.error


@pytest.fixture
def web_page(settings):
    """A real HTTP server on loopback with a page, a redirect and a PNG, let through the
    egress guard the way an operator would allow an intranet host."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.end_headers()
                return
            body, kind = (
                (documents.png(), "image/png")
                if self.path == "/picture"
                else (
                    b"<html><head><title>Otter facts</title></head><body><h1>Otters</h1>"
                    b"<p>Sea otters hold hands while they sleep.</p></body></html>",
                    "text/html",
                )
            )
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    settings.WORKBENCH_EGRESS_ALLOW = [*settings.WORKBENCH_EGRESS_ALLOW, f"127.0.0.1:{port}"]
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_a_page_is_fetched_through_the_egress_guard(
    alice, alice_collection, api_for, ingest, web_page
):
    api = api_for(alice)
    for path in ("/otters", "/moved", "/picture"):
        response = api.post(
            f"/api/collections/{alice_collection.pk}/documents/", {"url": web_page + path}
        )
        assert response.status_code == 201
    ingest()
    by_source = {
        d.source.rsplit("/", 1)[-1]: d for d in Document.objects.filter(collection=alice_collection)
    }
    assert by_source["otters"].status == DocStatus.READY
    assert by_source["otters"].title == "Otter facts"
    assert "redirects to /elsewhere" in by_source["moved"].error
    assert "image/png" in by_source["picture"].error
