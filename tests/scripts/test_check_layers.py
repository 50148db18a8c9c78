"""The import-layer contract (scripts/check_layers.py) on small fake repositories."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"
_spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
assert _spec is not None and _spec.loader is not None
check_layers = importlib.util.module_from_spec(_spec)
sys.modules["check_layers"] = check_layers  # dataclasses look their module up
_spec.loader.exec_module(check_layers)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    base = {
        "transcendence/__init__.py": "",
        "transcendence/core.py": "import numpy\n",
        "theory/__init__.py": "from theory import prop\n",
        "theory/prop.py": "import transcendence.core\n",
        "sims/__init__.py": "",
        "chess_exp/__init__.py": "",
        "chess_exp/cli.py": "def register():\n    import chess_exp.analysis.favor\n",
        "chess_exp/data/__init__.py": "",
        "chess_exp/data/readers.py": "from transcendence import core\n",
        "chess_exp/model/__init__.py": "",
        "chess_exp/model/gpt.py": "from chess_exp.data.readers import x\n",
        "chess_exp/play/__init__.py": "",
        "chess_exp/play/engines.py": "from ..model import gpt\n",
        "chess_exp/analysis/__init__.py": "",
        "chess_exp/analysis/favor.py": "from chess_exp.play.engines import y\nimport theory.prop\n",
        "chess_exp/experts/__init__.py": "",
        "paper_figs/__init__.py": "",
        "paper_figs/fig.py": "import chess_exp.analysis.favor\nimport sims\n",
    }
    base.update(files)
    for rel, text in base.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run(root: Path) -> tuple[int, list[str]]:
    imports = check_layers.collect(root)
    problems = check_layers.layer_violations(imports, root)
    problems += [" <-> ".join(c) for c in check_layers.cycles(check_layers._package_parents(imports))]
    return check_layers.main(["--root", str(root)]), problems


def test_a_downward_only_tree_passes(tmp_path):
    rc, problems = run(make_repo(tmp_path, {}))
    assert (rc, problems) == (0, [])


def test_a_function_level_upward_import_fails(tmp_path):
    root = make_repo(tmp_path, {"transcendence/core.py": "def f():\n    import theory.prop\n"})
    rc, problems = run(root)
    assert rc == 1
    assert len(problems) == 1 and "upward import" in problems[0] and "transcendence/core.py:2" in problems[0]


def test_a_relative_upward_import_between_chess_stages_fails(tmp_path):
    root = make_repo(tmp_path, {"chess_exp/model/gpt.py": "from ..play import engines\n"})
    rc, problems = run(root)
    assert rc == 1
    assert any("chess_exp.model.gpt (chess_exp.model, layer 3) imports chess_exp.play.engines" in p
               for p in problems)


@pytest.mark.parametrize("src, text", [
    ("theory/prop.py", "import sims\n"),     # theory -> sims
    ("sims/__init__.py", "import theory\n"),  # sims -> theory
])
def test_a_sideways_import_within_a_layer_fails(tmp_path, src, text):
    rc, problems = run(make_repo(tmp_path, {src: text}))
    assert rc == 1 and len(problems) == 1 and "sideways import" in problems[0]


def test_analysis_may_import_experts_but_not_the_reverse(tmp_path):
    ok = {"chess_exp/experts/panel.py": "import chess_exp.play.engines\n",
          "chess_exp/analysis/favor.py": "from chess_exp.experts import panel, panel\n"}
    assert run(make_repo(tmp_path / "ok", ok)) == (0, [])
    bad = {"chess_exp/experts/panel.py": "from chess_exp.analysis import favor\n"}
    rc, problems = run(make_repo(tmp_path / "bad", bad))
    assert rc == 1 and len(problems) == 1 and "upward import" in problems[0]


def test_import_module_with_a_literal_counts(tmp_path):
    root = make_repo(tmp_path, {"chess_exp/data/readers.py":
                                "import importlib\ndef f():\n    importlib.import_module('chess_exp.play.engines')\n"})
    rc, problems = run(root)
    assert rc == 1 and "chess_exp/data/readers.py:3" in problems[0]


def test_a_module_level_cycle_fails_and_a_lazy_one_does_not(tmp_path):
    cyc = {"chess_exp/data/a.py": "from chess_exp.data import b\n", "chess_exp/data/b.py": "import chess_exp.data.a\n"}
    rc, problems = run(make_repo(tmp_path / "cyc", cyc))
    assert rc == 1 and problems == ["chess_exp.data.a <-> chess_exp.data.b"]
    lazy = {"chess_exp/data/a.py": "from chess_exp.data import b\n",
            "chess_exp/data/b.py": "def f():\n    import chess_exp.data.a\n"}
    rc, problems = run(make_repo(tmp_path / "lazy", lazy))
    assert (rc, problems) == (0, [])


def test_a_root_without_the_packages_is_exit_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--root" in proc.stderr and "Traceback" not in proc.stderr
