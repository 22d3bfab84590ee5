"""Issue 10, finding 9: the example app never falls back to a hard-coded JWT secret. Without
``MESSENGER_SECRET`` it refuses to start unless in demo mode (a random secret per run, so a
token of one run is refused by the next); a short secret is refused too."""

from __future__ import annotations

from typing import Any

import pytest
from examples.messenger.app import create_app
from starlette.testclient import TestClient


def test_no_secret_outside_demo_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("MESSENGER_SECRET", raising=False)
    with pytest.raises(SystemExit) as e:
        create_app(f"sqlite:///{tmp_path}/m.db")
    assert "MESSENGER_SECRET" in str(e.value)
    monkeypatch.setenv("MESSENGER_SECRET", "short")
    with pytest.raises(SystemExit) as e:
        create_app(f"sqlite:///{tmp_path}/m.db")
    assert "32" in str(e.value)


def test_demo_secrets_differ_per_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("MESSENGER_SECRET", raising=False)
    first = create_app(f"sqlite:///{tmp_path}/a.db", demo=True)
    second = create_app(f"sqlite:///{tmp_path}/b.db", demo=True)
    with TestClient(first) as a, TestClient(second) as b:
        r = a.post("/api/_login", json={"username": "ann", "password": "ann"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        assert a.get("/api/message", headers=h).status_code == 200
        assert b.get("/api/message", headers=h).status_code == 401  # another secret
