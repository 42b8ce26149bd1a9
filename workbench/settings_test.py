"""Settings for the test suite: the same stack (embedded PostgreSQL + pgvector), in its own data
directory so `make test` never touches the data of `make run`."""

import os
from pathlib import Path

os.environ.setdefault(
    "WORKBENCH_DATA_DIR", str(Path(__file__).resolve().parent.parent / ".data" / "test")
)
os.environ.setdefault("DEBUG", "1")  # development secrets in the test data directory

from workbench.settings import *  # noqa: F403

DEBUG = False
# Hashing passwords properly is the slowest thing in a test that creates users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
if os.environ.get("WORKBENCH_TEST_MAIL_DIR"):
    # A Daphne under test writes its mail where the browser test can read the links.
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": os.environ["WORKBENCH_TEST_MAIL_DIR"]},
        }
    }
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_USE_FINDERS = True
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
