"""The docs stay in step with the code."""

from pathlib import Path

import pytest

from sknets import MLPClassifier, MLPRegressor

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor])
def test_user_guide_documents_every_parameter(estimator):
    guide = (DOCS / "user-guide.md").read_text()
    for name in estimator().get_params():
        assert f"`{name}`" in guide, f"docs/user-guide.md does not document {name}"
