"""What siteml refuses about workspaces and access before it talks to any server."""

import pytest

from tests.conftest import VALID_SCENARIO


def test_access_needs_a_team_server(cli, sqlite_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    code, _, err = cli("access", "list")
    assert code == 2 and "is not a team server" in err


@pytest.mark.parametrize(("args", "message"), [
    (("grant", "alice", "owner", "acme"), "use one of viewer, editor, manager"),
    (("revoke", "alice", "viewer", "static-files"), "reserves for its workspaces"),
    (("grant", "alice", "viewer", "acme-"), "must not end with '-'"),
])
def test_bad_role_or_customer_is_exit_2_before_any_call(cli, monkeypatch, args, message):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    code, _, err = cli("access", *args)
    assert code == 2 and message in err


def test_a_short_new_password_is_refused(cli, monkeypatch):
    monkeypatch.setenv("SITEML_NEW_USER_PASSWORD", "short-pw")
    code, _, err = cli("access", "add-user", "alice")
    assert code == 2 and "at least 12 characters" in err and "short-pw" not in err


def test_a_workspace_asked_of_an_embedded_store_is_invalid_input(cli, write, sqlite_uri,
                                                                 monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("MLFLOW_WORKSPACE", "donghwa-entec")
    code, _, err = cli("run", str(write(VALID_SCENARIO)), "--skip-data-check")
    assert code == 2 and "MLFLOW_WORKSPACE=donghwa-entec" in err and "no workspaces" in err
    code, _, err = cli("runs", "--site", "donghwa-entec/busan-plant1/welding")
    assert code == 2 and "no workspaces" in err
