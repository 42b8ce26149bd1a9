"""Upload limits checked while the request is read, and where uploaded bytes are kept.

`LimitedUploadHandler` is first in FILE_UPLOAD_HANDLERS for the whole site: it counts the bytes
of each file as they arrive and skips a file the moment it passes the limit (the rest of the
request is still read, so the other files and the CSRF token arrive), and stops reading a
request that brings more files than allowed. What it refused is left on the request
(`request.upload_refused`: name → reason) for the view's per-file report.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload

# Bidirectional and invisible format controls: in a file name they only disguise it
# ("invoice\u202efdp.exe" shows as "invoiceexe.pdf"); the name is for people, so they go.
_NAME_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
    None,
)


def clean_filename(name: str) -> str:
    """An uploaded file's name as we show it: no path, no bidi or invisible controls."""
    name = (name or "").translate(_NAME_CONTROLS).strip()
    return name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip()


def max_upload_bytes() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))


def max_files() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_UPLOAD_FILES", 20))


class LimitedUploadHandler(FileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.count = 0
        self.received = 0
        if request is not None and not hasattr(request, "upload_refused"):
            request.upload_refused = {}

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        self.count += 1
        self.received = 0
        if self.count > max_files():
            self._refuse(f"Only {max_files()} files per upload; the rest were not read.")
            raise StopUpload(connection_reset=False)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > max_upload_bytes():
            limit_mb = max_upload_bytes() / 1024 / 1024
            self._refuse(f"Larger than the {limit_mb:g} MB limit.")
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handlers (memory, temporary file) keep the data

    def _refuse(self, reason: str):
        if self.request is not None:
            self.request.upload_refused[self.file_name or "(unnamed)"] = reason


def storage_dir() -> Path:
    path = Path(settings.DATA_DIR) / "uploads" / "rag"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def store(data: bytes) -> str:
    """Keep `data` under a generated name (never the uploader's); returns the name."""
    name = secrets.token_hex(16)
    (storage_dir() / name).write_bytes(data)
    return name


def load(name: str) -> bytes:
    if not name or "/" in name or name.startswith("."):
        raise FileNotFoundError(name)
    return (storage_dir() / name).read_bytes()


def discard(name: str) -> None:
    if name and "/" not in name and not name.startswith("."):
        (storage_dir() / name).unlink(missing_ok=True)
