"""``python -m gateway.testing.demo``: how the shipped demo cassette is made again."""

from __future__ import annotations

import shutil

from gateway.stores import cassette_files as files
from gateway.testing.demo import record
from tests.support import project_root


async def test_the_demo_is_recorded_anew_over_an_older_copy(tmp_path):
    shipped = files.cassette_path(project_root() / "cassettes", "demo/harvest-basics")
    older = files.cassette_path(tmp_path, "demo/harvest-basics")
    older.parent.mkdir(parents=True)
    shutil.copy(shipped, older)  # an older copy must be replaced, not replayed

    count = await record(tmp_path, "demo/harvest-basics")

    uris = [i["request"]["uri"] for i in files.read(older).interactions]
    assert count == len(uris) == 8
    assert all(u.startswith("https://api.harvestapp.com/v2/") for u in uris)  # rebased
    # The projects list's second page, both as asked for by number and as its next link.
    assert "https://api.harvestapp.com/v2/projects?per_page=2&page=2" in uris
    assert any("/v2/projects?cursor=" in u and "ref=next_cursor" in u for u in uris)
