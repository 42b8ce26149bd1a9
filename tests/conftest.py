"""Fixtures of the cross-app tests."""

from __future__ import annotations

import subprocess

import pytest

from tests import servers


@pytest.fixture
def daphne(transactional_db, fake_provider, tmp_path):
    """`daphne(**env)` starts a Daphne subprocess on the test database (its egress guard lets
    the fake provider through; `env` adds settings such as WORKBENCH_DB_POOL_MAX) and returns
    (process, "127.0.0.1:<port>"). Every process started is stopped on the way out, before the
    database is flushed."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> tuple[subprocess.Popen, str]:
        environment = servers.daphne_env(
            WORKBENCH_EGRESS_ALLOW=f"127.0.0.1:{fake_provider.port}", **env
        )
        process, port = servers.start_daphne(environment, tmp_path / f"daphne-{len(started)}.log")
        started.append(process)
        return process, f"127.0.0.1:{port}"

    yield start
    servers.stop(*started)
