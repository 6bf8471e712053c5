"""Fixtures for the tools wing: the real IPython test shell, cleaned after each test."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib
import pytest
from IPython.core.interactiveshell import InteractiveShell

matplotlib.use("Agg")  # no display in tests; set before pyplot is imported anywhere


@pytest.fixture
def kernel(shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The test shell; afterwards every name a test defined in it is gone, no next input is
    pending and pyplot holds no figures."""
    before = set(shell.user_ns)
    shell.rl_next_input = None
    yield shell
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    shell.rl_next_input = None
    import matplotlib.pyplot as plt

    plt.close("all")
