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


def _python_blocks(path):
    text = path.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_readme_example_runs(capsys):
    root = DOCS.parent
    blocks = _python_blocks(root / "README.md")
    assert blocks, "README.md shows no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    score = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert score > 0.9


def test_user_guide_example_runs(capsys):
    for block in _python_blocks(DOCS / "user-guide.md"):
        exec(compile(block, "user-guide.md", "exec"), {})
    assert float(capsys.readouterr().out.split()[0]) > 0.9
