"""`siteml server check` against real tracking servers: a plain one, and a team server (basic-auth
and workspaces on)."""

import json

import mlflow
import pytest

from tests.conftest import free_port


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
def test_a_team_server(cli, team_server, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = cli("server", "check", team_server.url, "--json")
    assert code == 0, err
    facts = json.loads(out)
    assert facts["auth"] is True and facts["workspaces"] is True
    assert facts["credentials_accepted"] is False  # none given
    assert facts["mlflow_version"] is None  # basic-auth guards /version
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", team_server.admin)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin_password)
    facts = json.loads(cli("server", "check", team_server.url, "--json")[1])
    assert facts["credentials_accepted"] is True
    assert facts["mlflow_version"] == mlflow.__version__
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-2")
    code, out, _ = cli("server", "check", team_server.url, "--json")
    assert json.loads(out)["credentials_accepted"] is False
    assert "wrong-password-2" not in out
