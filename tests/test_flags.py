# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import pytest

from scripts.flags import as_flag


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("false", False), ("True", True), (0, False), ("on", True)]
)
def test_text_switches_are_read_strictly(value, expected):
    assert as_flag(value) is expected


@pytest.mark.parametrize("value", ["flase", 2, None, "maybe"])
def test_anything_else_is_an_error_naming_the_switch(value):
    with pytest.raises(ValueError, match="retrain must be true or false"):
        as_flag(value, "retrain")
