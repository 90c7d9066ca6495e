"""The panel tests' shared fixture: the panel clock stopped at START (time-machine moves it, and the login
throttle's windows with it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import time_machine

from tests.web.accounts import START


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller
