"""The README as a new user meets it: its two commands come first, .ci/run runs the second, its
notebook example runs, and its links lead somewhere."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_two_commands_come_first_and_ci_runs_the_test_one():
    first = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    commands = [line for line in first if not line.startswith("#")]
    assert commands[0].endswith("tox -e classic") and commands[1].endswith("tox -e test")
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_the_readme_stays_a_guide():
    assert len(README.splitlines()) <= 300


def test_the_python_api_example_runs(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    example = README.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("matplotlib.pyplot.savefig", lambda path, **kw: Path(tmp_path / path).write_bytes(b"png"))
    exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "cartpole_curves.png").exists()


def test_every_relative_link_exists():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).exists(), target
