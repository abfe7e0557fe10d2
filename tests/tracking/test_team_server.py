"""`siteml server start`: what it refuses before anything starts, and the real server it runs
(auth and workspaces on, nobody sees anything without a role, a clean stop on SIGTERM)."""

import os
import signal
import stat

import pytest

from tests.conftest import free_port, start_team_server, stop_process_group

GOOD_PASSWORD = "a-long-admin-pw-1"


def start(cli, tmp_path, *extra: str):
    return cli("server", "start", "--backend-store-uri", f"sqlite:///{tmp_path}/team.db",
               "--artifacts-destination", str(tmp_path / "artifacts"),
               "--state-dir", str(tmp_path / "state"), "--port", str(free_port()), *extra)


@pytest.mark.parametrize(("password", "message"), [
    (None, "no admin password"),
    ("", "no admin password"),
    ("eleven-char", "shorter than 12 characters"),
    ("password1234", "known default"),
    ("PASSWORD1234", "known default"),
])
def test_a_weak_or_missing_admin_password_is_refused_before_anything(
        cli, tmp_path, monkeypatch, password, message):
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    if password is not None:
        monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", password)
    code, _, err = start(cli, tmp_path)  # stdin is not a terminal: no prompt
    assert code == 2 and message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("option", "value"), [
    ("--backend-store-uri", "file:///srv/mlruns"),
    ("--auth-db", "./users.db"),
])
def test_a_store_that_cannot_hold_workspaces_is_refused(cli, tmp_path, monkeypatch, option,
                                                         value):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", GOOD_PASSWORD)
    code, _, err = start(cli, tmp_path, option, value)
    assert code == 2 and f"{option} '{value}'" in err and "SQL database" in err
    assert list(tmp_path.iterdir()) == []


def test_a_secret_file_others_can_read_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", GOOD_PASSWORD)
    secret = tmp_path / "state" / "flask_secret_key"
    secret.parent.mkdir()
    secret.write_text("kept-from-before")
    secret.chmod(0o644)
    code, _, err = start(cli, tmp_path)
    assert code == 2 and "readable by others" in err and "chmod 600" in err
    assert sorted(p.name for p in secret.parent.iterdir()) == ["flask_secret_key"]


@pytest.mark.slow
def test_the_server_starts_locked_down_keeps_its_secret_and_stops_on_sigterm(tmp_path):
    from siteml.tracking.server_check import server_facts

    proc, url = start_team_server(tmp_path, GOOD_PASSWORD)
    try:
        state = tmp_path / "state"
        secret = state / "flask_secret_key"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        config = (state / "basic_auth.ini").read_text()
        assert "default_permission = NO_PERMISSIONS" in config
        assert "grant_default_workspace_access = false" in config
        assert GOOD_PASSWORD not in config  # the password reaches the server by environment
        facts = server_facts(url)
        assert facts["auth"] is True and facts["workspaces"] is True
        kept = secret.read_text()
        proc.send_signal(signal.SIGTERM)  # to siteml only, as a supervisor does
        assert proc.wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):  # the server went with it
            os.killpg(proc.pid, 0)
    finally:
        stop_process_group(proc)
    # a second start: the admin exists, so no password is asked; the secret is the same
    proc, url = start_team_server(tmp_path, None)
    try:
        assert secret.read_text() == kept
        assert server_facts(url)["auth"] is True
    finally:
        stop_process_group(proc)
