"""The suite's own machinery (tests/conftest.py, tests/corpora.py): shared data found or the
test skipped with the reason."""

from __future__ import annotations

import pytest
from corpora import SHARED_DATA, shared_data


def test_absent_shared_data_skips_the_test_and_says_what_is_missing(tmp_path):
    with pytest.raises(pytest.skip.Exception, match=f"needs {tmp_path / 'shakespeare'} .*; absent here"):
        shared_data("shakespeare", root=tmp_path)
    (tmp_path / "shakespeare").mkdir()
    assert shared_data("shakespeare", root=tmp_path) == tmp_path / "shakespeare"
    assert SHARED_DATA.parent.name == "shared"  # ../shared/data beside the repository
