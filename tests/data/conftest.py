"""Fixtures of the data tests: a fresh tfds data dir per session, no network."""

import socket

import pytest


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """A session-wide tfds data dir, so the built-in set is prepared once, fresh."""
    return tmp_path_factory.mktemp("tensorflow_datasets")


@pytest.fixture
def no_network(monkeypatch):
    """Makes every python socket connection fail."""

    def refuse(*args, **kwargs):
        raise OSError("a data test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
