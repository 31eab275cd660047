"""The operator's README section names every metric the gateway exports."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.support import README


async def test_readme_documents_every_exported_metric(live_metrics: str) -> None:
    readme = README.read_text("utf-8")
    section = readme[readme.index("## Operating the gateway") :]
    for family in text_string_to_metric_families(live_metrics):
        name = family.name
        if family.type == "counter":
            name += "_total"
        if name.endswith("_created"):
            continue
        assert f"`{name}`" in section, f"README's metric table lacks {name}"
