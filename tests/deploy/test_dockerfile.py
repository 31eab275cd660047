"""The Dockerfile, read as text: slim base, non-root, healthcheck on /healthz, speed extras.

No Docker engine runs here, so the image is not built by the suite (README says so).
"""

from __future__ import annotations

import ast
import json
import re

from tests.deploy.support import DEPLOY
from tests.support import project_root

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text("utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_final_stage_is_slim_python_311_and_runs_as_non_root() -> None:
    ins = instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert all(f.startswith("python:3.11-slim") for f in froms)
    final = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    users = [rest for word, rest in ins[final:] if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")


def test_installs_the_package_with_speed_extras() -> None:
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert re.search(r"pip install .*'\.\[speed\]'", runs)
    copied = " ".join(rest.split()[0] for word, rest in instructions() if word == "COPY")
    for needed in ("pyproject.toml", "gateway", "policies"):
        assert needed in copied, needed
        assert (project_root() / needed).exists()


def test_healthcheck_probes_healthz_with_python() -> None:
    (check,) = [rest for word, rest in instructions() if word == "HEALTHCHECK"]
    cmd = json.loads(check.split("CMD", 1)[1])
    assert cmd[:2] == ["python", "-c"]
    ast.parse(cmd[2])  # the probe is valid Python
    assert "/healthz" in cmd[2]
    assert "urllib.request" in cmd[2]


def test_serves_on_all_interfaces_on_the_exposed_port() -> None:
    ins = instructions()
    env = " ".join(rest for word, rest in ins if word == "ENV")
    assert "HARVEST_GATEWAY_HOST=0.0.0.0" in env
    assert ("EXPOSE", "8080") in ins
    assert "HARVEST_GATEWAY_PORT=8080" in env
    (entry,) = [json.loads(rest) for word, rest in ins if word == "ENTRYPOINT"]
    assert entry == ["harvest-gateway"]
    assert (project_root() / ".dockerignore").read_text().count(".venv") == 1
