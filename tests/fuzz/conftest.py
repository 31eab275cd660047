from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.live import LiveStack


@pytest.fixture(scope="module")
def live() -> Iterator[LiveStack]:
    stack = LiveStack().start()
    try:
        yield stack
    finally:
        stack.stop()
