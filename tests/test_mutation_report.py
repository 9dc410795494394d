"""The mutation results file keeps every survivor's review across runs (tools/mutation.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mutation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "tools" / "mutation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_score_counts_equivalent_and_untested_mutants_against_it(mutation: ModuleType):
    statuses = {"m1": "killed", "m2": "killed", "m3": "survived", "m4": "no tests",
                "m5": "timeout", "m6": "suspicious"}
    previous = {"survivors": [{"mutant": "m3", "verdict": "equivalent: same order"}]}
    report = mutation.build_report(["hub/core/rules.py"], statuses, previous)
    assert report["score"] == 60.0  # 3 detected (a timeout is), 2 not; "suspicious" neither
    assert report["counts"] == {"killed": 2, "no tests": 1, "survived": 1, "suspicious": 1,
                                "timeout": 1}
    assert report["survivors"] == [
        {"mutant": "m3", "status": "survived", "verdict": "equivalent: same order"},
        {"mutant": "m4", "status": "no tests", "verdict": None}]


def test_a_survivor_a_new_test_kills_stays_listed_as_killed_later(mutation: ModuleType):
    previous = {"survivors": [{"mutant": "m1", "verdict": None},
                              {"mutant": "m2", "verdict": "killed-later"},
                              {"mutant": "gone", "verdict": "equivalent: x"}]}
    report = mutation.build_report([], {"m1": "killed", "m2": "survived", "m3": "survived"},
                                   previous)
    assert report["survivors"] == [
        {"mutant": "m1", "status": "killed", "verdict": "killed-later"},
        # the test that killed it no longer does: back to awaiting review
        {"mutant": "m2", "status": "survived", "verdict": None},
        {"mutant": "m3", "status": "survived", "verdict": None},
    ]
    assert report["score"] == round(100 / 3, 1)


def test_no_results_no_score(mutation: ModuleType):
    assert mutation.build_report([], {}, None)["score"] is None


def test_an_explained_mutant_keeps_its_reason_and_only_undetected_ones_take_one(
    mutation: ModuleType,
):
    statuses = {"f__mutmut_1": "survived", "f__mutmut_2": "killed", "f__mutmut_3": "no tests"}
    previous = mutation.explain({}, statuses, [["f__mutmut_*", "a default only tested for truth"]])
    report = mutation.build_report([], statuses, previous)
    assert report["survivors"] == [
        {"mutant": "f__mutmut_1", "status": "survived",
         "verdict": "equivalent: a default only tested for truth"},
        {"mutant": "f__mutmut_3", "status": "no tests",
         "verdict": "equivalent: a default only tested for truth"},
    ]
    with pytest.raises(SystemExit, match="no undetected mutant"):
        mutation.explain({}, statuses, [["f__mutmut_2", "x"]])


def test_a_function_s_tests_are_ranked_by_the_words_of_its_name_and_docstring(
    mutation: ModuleType,
):
    sources = mutation.Sources()
    words = sources.words_of("hub.core.rules.x_plan")
    assert {"plan", "warehouse", "split"} <= words  # "…fill the whole order; … (a split)"
    assert not words & mutation.COMMON
    assert sources.words_of("hub.core.intake.x__stored_key") >= {"stored", "hashed"}
    source = sources.of_test("tests/test_mutation_report.py::test_no_results_no_score")
    assert source.startswith("def test_no_results_no_score(")
    assert sources.of_test("tests/test_mutation_report.py::no_such_test") == ""


def test_a_mutant_is_killed_by_hand_only_by_a_test_that_passes_without_it(
    mutation: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A copy of mutmut's layout: a module whose function picks its mutant by
    ``MUTANT_UNDER_TEST``, as mutmut's trampoline does, and its ``.meta`` verdicts."""
    package = tmp_path / "mutants" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "calc.py").write_text(
        "import os\n"
        "def double(x):\n"
        "    chosen = os.environ.get('MUTANT_UNDER_TEST', '')\n"
        "    if chosen == 'pkg.calc.x_double__mutmut_1':\n"
        "        return x + x + 1\n"
        "    if chosen == 'pkg.calc.x_double__mutmut_2':\n"
        "        return x * 2  # the same, written otherwise\n"
        "    return x + x\n"
    )
    tests = tmp_path / "mutants" / "tests"
    tests.mkdir()
    (tests / "test_calc.py").write_text(
        "from pkg.calc import double\n"
        "def test_double():\n    assert double(2) == 4\n"
        "def test_wrong():\n    assert double(2) == 5\n"
    )
    meta = package / "calc.py.meta"
    meta.write_text(json.dumps({"exit_code_by_key": {
        "pkg.calc.x_double__mutmut_1": 0, "pkg.calc.x_double__mutmut_2": 0}}))
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mutants"))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # seconds less per run
    modules = ["pkg/calc.py"]

    mutation.kill_by_hand(modules, [["pkg.calc.x_double__mutmut_1",
                                     "tests/test_calc.py::test_double"]])
    # mutmut's exit codes: 1 a test failed (killed), 0 every test passed (survived).
    assert codes(meta) == {"pkg.calc.x_double__mutmut_1": 1, "pkg.calc.x_double__mutmut_2": 0}

    with pytest.raises(SystemExit, match=r"does not fail on pkg\.calc\.x_double__mutmut_2"):
        mutation.kill_by_hand(modules, [["pkg.calc.x_double__mutmut_2",
                                         "tests/test_calc.py::test_double"]])
    with pytest.raises(SystemExit, match="fails on the original code"):
        mutation.kill_by_hand(modules, [["pkg.calc.x_double__mutmut_2",
                                         "tests/test_calc.py::test_wrong"]])
    with pytest.raises(SystemExit, match=r"no mutant 'pkg\.calc\.x_double__mutmut_9'"):
        mutation.kill_by_hand(modules, [["pkg.calc.x_double__mutmut_9",
                                         "tests/test_calc.py::test_double"]])
    assert codes(meta)["pkg.calc.x_double__mutmut_2"] == 0


def codes(meta: Path) -> dict[str, int]:
    return json.loads(meta.read_text())["exit_code_by_key"]


def test_timeouts_are_forgotten_so_the_next_run_checks_them_again(
    mutation: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    meta = tmp_path / "mutants" / "pkg" / "calc.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {
        "pkg.calc.x_f__mutmut_1": -24, "pkg.calc.x_f__mutmut_2": 1, "pkg.calc.x_f__mutmut_3": 0,
        "pkg.calc.x_f__mutmut_4": None}}))
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    # mutmut's exit codes as its stats table reads them (mutmut may not be installed here)
    table = {-24: "timeout", 1: "killed", 0: "survived"}
    assert mutation.forget_timeouts(["pkg/calc.py"], table) == ["pkg.calc.x_f__mutmut_1"]
    assert codes(meta) == {"pkg.calc.x_f__mutmut_1": None, "pkg.calc.x_f__mutmut_2": 1,
                           "pkg.calc.x_f__mutmut_3": 0, "pkg.calc.x_f__mutmut_4": None}
