# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Which errors end a command with their message alone: those the bundle raised on purpose, not bugs."""

from __future__ import annotations

import pytest

from scripts.data.resize_pad import ResizePad
from scripts.errors import explained_error


def _raised(call) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def test_a_refusal_of_the_bundle_is_found_under_monai_s_wrapping():
    refusal = _raised(lambda: ResizePad(spatial_size=(0, 8)))
    try:
        raise RuntimeError("Failed to evaluate ConfigExpression") from refusal
    except RuntimeError as wrapped:
        assert explained_error(wrapped) is refusal


def test_a_bug_or_a_library_error_keeps_its_traceback():
    assert explained_error(_raised(lambda: {}["missing"])) is None  # KeyError: a bug, wherever it happens
    assert explained_error(_raised(lambda: int("x"))) is None  # a ValueError, but not raised by the bundle
