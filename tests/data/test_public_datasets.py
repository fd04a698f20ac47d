"""The public data set loaders (``tests/support/public_datasets.py``) return real, binary-labelled frames."""

from __future__ import annotations

import pandas as pd
import public_datasets
import pytest


@pytest.mark.parametrize("name", sorted(public_datasets.DATASETS))
def test_loader_returns_a_frame_with_a_two_class_label(name: str) -> None:
    dataset = public_datasets.get(name)
    if not dataset.installed():
        pytest.skip(f"{dataset.package} is not installed: {public_datasets.INSTALL_HINT}")
    frame = dataset.load()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) > 1000
    assert frame[dataset.label].notna().all()
    classes = frame[dataset.label].value_counts()
    assert len(classes) == 2, classes
    assert classes.min() >= 0.03 * len(frame)  # every data set here has >= 3 % of the rarer class
    assert "rownames" not in frame.columns
    assert len(frame.columns) >= 4


def test_row_index_columns_are_dropped_and_others_kept() -> None:
    frame = pd.DataFrame({"rownames": [1, 2, 3], "rank": [1, 2, 3], "y": ["a", "b", "a"]})
    assert list(public_datasets.drop_row_index(frame).columns) == ["rank", "y"]
    not_an_index = pd.DataFrame({"rownames": [3, 1, 2], "y": ["a", "b", "a"]})
    assert list(public_datasets.drop_row_index(not_an_index).columns) == ["rownames", "y"]


def test_a_missing_file_names_the_install_command() -> None:
    if not public_datasets.package_installed("ISLP"):
        pytest.skip("ISLP is not installed")
    with pytest.raises(FileNotFoundError, match=r"requirements/datasets\.txt"):
        public_datasets.islp_csv("NoSuchDataSet")
