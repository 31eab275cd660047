"""``harvest-gateway cassettes``: list, show, lint, redact, rebase."""

from __future__ import annotations

import shutil
import textwrap

from gateway.cli import main
from gateway.stores import cassette_files as files
from tests.support import project_root

# Token-shaped on purpose (lint must flag it), assembled here so no such literal is committed.
FAKE_TOKEN = "1234567.pt." + "AbCdEfGhIjKlMnOpQrStUvWx"
BAD = textwrap.dedent(
    """\
    interactions:
    - request:
        body: null
        headers:
          Authorization: Bearer FAKE_TOKEN
          Harvest-Account-Id: ['111111']
        method: GET
        recorded_at: yesterday
        uri: http://127.0.0.1:5555/v2/users/me?access_token=FAKE_TOKEN
      response:
        body: {string: '{"links":{"next":"http://127.0.0.1:5555/v2/users?page=2"}}'}
        headers:
          Content-Encoding: [gzip]
        status: {code: 200}
    metadata: {who: me}
    version: 1
    """
).replace("FAKE_TOKEN", FAKE_TOKEN)


def test_lint_accepts_the_demo_and_lists_what_is_wrong_with_a_bad_cassette(tmp_path, capsys):
    shutil.copytree(project_root() / "cassettes" / "demo", tmp_path / "demo")
    (tmp_path / "bad.yaml").write_text(BAD)
    assert main(["cassettes", "--cassette-dir", str(tmp_path), "lint", "demo/harvest-basics"]) == 0
    assert "demo/harvest-basics: ok" in capsys.readouterr().out
    assert main(["cassettes", "--cassette-dir", str(tmp_path), "lint"]) == 1
    out = capsys.readouterr().out
    for expected in (
        "top-level 'metadata'",
        "request keys are",
        "request.headers ['Authorization'] are not lists",
        "status.message is missing",
        "Content-Encoding beside a decoded body",
        "holds a Harvest token",
        "vcrpy 9 cannot load it: TypeError",
    ):
        assert expected in out, expected


def test_redact_and_rebase_fix_a_vcrpy_recording(tmp_path, capsys):
    fixed = BAD.replace("    recorded_at: yesterday\n", "").replace("metadata: {who: me}\n", "")
    fixed = fixed.replace("{code: 200}", "{code: 200, message: OK}")
    fixed = fixed.replace("Content-Encoding: [gzip]", "Content-Type: [application/json]")
    (tmp_path / "rec.yaml").write_text(fixed)
    root = ["cassettes", "--cassette-dir", str(tmp_path)]
    assert main([*root, "redact", "rec"]) == 0
    assert main([*root, "rebase", "rec", "--from", "http://127.0.0.1:5555",
                 "--to", "https://api.harvestapp.com"]) == 0  # fmt: skip
    assert main([*root, "lint", "rec"]) == 0
    item = files.read(tmp_path / "rec.yaml").interactions[0]
    assert item["request"]["uri"] == "https://api.harvestapp.com/v2/users/me"
    assert item["request"]["headers"]["Authorization"] == ["REDACTED"]
    assert item["request"]["headers"]["Harvest-Account-Id"][0].startswith("acct-sha256:")
    assert "https://api.harvestapp.com/v2/users?page=2" in item["response"]["body"]["string"]
    assert main([*root, "list"]) == 0
    assert main([*root, "show", "rec", "--bodies"]) == 0
    out = capsys.readouterr().out
    assert "rec\t1 interactions" in out
    assert "GET https://api.harvestapp.com/v2/users/me  ->  200" in out


def test_a_bad_name_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["cassettes", "--cassette-dir", str(tmp_path), "show", "../etc/passwd"]) == 2
    assert "invalid cassette name" in capsys.readouterr().err
