"""`siteml server check` against real tracking servers: a plain one, and one with basic-auth
and workspaces on."""

import json
import os

import mlflow
import pytest

from tests.conftest import free_port, start_mlflow_server, stop_process_group


def test_a_dead_server_is_exit_1_without_credentials_in_the_output(cli):
    code, out, _ = cli("server", "check", f"http://alice:s3cret@127.0.0.1:{free_port()}",
                       "--json")
    assert code == 1
    facts = json.loads(out)
    assert facts["reachable"] is False and facts["uri"].startswith("http://***@127.0.0.1:")
    assert "s3cret" not in out and "alice" not in out


def test_a_store_that_is_not_a_server_is_invalid_input(cli):
    code, _, err = cli("server", "check", "sqlite:///mlflow.db")
    assert code == 2 and "http(s)://" in err


@pytest.mark.slow
def test_a_plain_server(cli, mlflow_server):
    code, out, err = cli("server", "check", mlflow_server, "--json")
    assert code == 0, err
    facts = json.loads(out)
    assert facts["reachable"] is True and facts["auth"] is False
    assert facts["credentials_accepted"] is None
    assert facts["mlflow_version"] == mlflow.__version__


@pytest.mark.slow
def test_a_server_with_auth_and_workspaces(cli, tmp_path, monkeypatch):
    config = tmp_path / "auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                      f"database_uri = sqlite:///{tmp_path}/auth.db\nadmin_username = admin\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth"
                      "\ngrant_default_workspace_access = false\n")
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "a-long-admin-pw-1")
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "a-test-flask-secret")
    proc, url = start_mlflow_server(tmp_path, "--app-name", "basic-auth", "--enable-workspaces")
    try:
        monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD")
        code, out, err = cli("server", "check", url, "--json")
        assert code == 0, err
        facts = json.loads(out)
        assert facts["auth"] is True and facts["workspaces"] is True
        assert facts["credentials_accepted"] is False  # none given
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "a-long-admin-pw-1")
        assert json.loads(cli("server", "check", url, "--json")[1])["credentials_accepted"]
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-2")
        code, out, _ = cli("server", "check", url, "--json")
        assert json.loads(out)["credentials_accepted"] is False
        assert "wrong-password-2" not in out and os.environ["MLFLOW_TRACKING_PASSWORD"] not in out
    finally:
        stop_process_group(proc)
