"""Mutation testing of the core modules, run by hand (never in CI: it takes hours).

Line coverage says a test ran a line, not that it would notice the line being wrong. mutmut
changes the code one small edit at a time (``<`` to ``<=``, ``and`` to ``or``, a constant to
another) and runs the tests against each change; a change no test fails on ("a survivor") is
behaviour nobody checks. The score is detected / (detected + undetected), counting a mutant
no test reaches as undetected (see ``build_report``).

The modules come from ``[tool.mutmut]`` in pyproject.toml (orders, inventory, intake, rules,
rates, auth and the web layer's permission check). ``--module`` and ``--tests`` narrow one run
for a quick check without editing that file; mutmut has no command-line options for them, so
they are set on its loaded configuration before its ``run`` command starts.

Results go to bench/results/mutation.json. Every mutant that ever survived stays listed with a
``verdict``: ``"killed-later"`` once a test added since catches it (``--rerun-survivors`` runs
the survivors again and sets it), or ``"equivalent: <reason>"``, written by the person who
found that the change cannot alter behaviour. Verdicts already in the file are kept for
mutants of the same name, so re-running never loses that review.

    pip install -e '.[mutation]'
    python tools/mutation.py                                 # everything, slow
    python tools/mutation.py --module hub/core/rules.py -- \\
        tests/test_rules.py tests/test_approval.py           # one module, minutes
    python tools/mutation.py --rerun-survivors               # after adding tests
    python tools/mutation.py --killed-by MUTANT TEST         # code mutmut cannot map
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mutation.json"
# mutmut's verdict for every mutant and the hash of every function it mutated: restored into a
# fresh checkout's mutants/ so that a run there tests only the functions changed since.
STATE = ROOT / "bench" / "results" / "mutation-state.json"
# mutmut's statuses, as the score counts them
DETECTED = ("killed", "timeout", "segfault")
UNDETECTED = ("survived", "no tests")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--module", action="append", default=[], metavar="PATH",
        help="mutate only this file (repeatable), e.g. hub/core/rules.py; "
             "default: every module in [tool.mutmut] only_mutate",
    )
    parser.add_argument(
        "tests", nargs="*", metavar="PYTEST_ARG",
        help="after --: the tests to run against each mutant (pytest arguments); default: tests/",
    )
    parser.add_argument(
        "--max-children", type=int, default=None,
        help="parallel mutant runs (mutmut's default is the number of CPUs)",
    )
    parser.add_argument(
        "--rerun-survivors", action="store_true",
        help="run only the mutants that survived last time (after adding tests for them)",
    )
    parser.add_argument(
        "--tests-per-function", type=int, default=100, metavar="N",
        help="run each mutant against at most N of the tests that reach its function: those "
             "using the most words of its name and docstring first, then the fastest "
             "(default 100; 0 for all: days on this suite)",
    )
    parser.add_argument(
        "--equivalent", nargs=2, action="append", default=[], metavar=("MUTANT", "REASON"),
        help="record that an undetected mutant cannot change behaviour, and why (repeatable; "
             "a trailing * matches every mutant of a function); implies --report-only",
    )
    parser.add_argument(
        "--killed-by", nargs=2, action="append", default=[], metavar=("MUTANT", "TEST"),
        help="run TEST (a pytest node id) against MUTANT and, if it passes on the original "
             "code and fails on the mutant, record the mutant killed: for code mutmut cannot "
             "map to a test, such as a fork handler that runs only in a child process "
             "(repeatable); implies --report-only",
    )
    parser.add_argument(
        "--recheck-timeouts", action="store_true",
        help="forget the timeouts of the last run, so the next run checks those mutants again "
             "(a run that was paused, or shared a loaded machine, times out mutants that do "
             "not hang); implies --report-only",
    )
    parser.add_argument(
        "--report-only", action="store_true",
        help="skip the run; write the results file from mutmut's last run",
    )
    return parser.parse_args(argv)


def limit_tests_per_function(limit: int) -> None:
    """Keep, for each function, only ``limit`` of the tests that reach it: first the tests
    using the most words of its name and docstring (``authenticate``, whose docstring speaks
    of expired and revoked tokens: the token expiry tests), then the fastest.

    A function every API request passes through (order creation, the permission check, the
    ledger check every database test ends with) is reached by hundreds of tests; a mutant
    that survives runs all of them, and there are thousands of mutants. The tests that speak
    of what a function does are the ones written to check it, and the fastest are mostly
    focused ones (decision tables, boundaries), so the cut costs little: the score is a lower
    bound of what the whole suite would give, never more. mutmut has no setting for it, so
    its stats are cut in memory after it has collected them."""
    import mutmut.__main__ as mutmut_main

    collect = mutmut_main.collect_or_load_stats

    def collect_then_limit(*args: Any, **kwargs: Any) -> None:
        collect(*args, **kwargs)
        state = mutmut_main.state()
        sources = Sources()
        for name, tests in state.tests_by_mangled_function_name.items():
            if len(tests) <= limit:
                continue
            words = sources.words_of(name)

            def rank(test: str, words: set[str] = words) -> tuple[int, float, str]:
                text = sources.of_test(test).lower()
                return -sum(w in text for w in words), state.duration_by_test.get(test, 0.0), test

            state.tests_by_mangled_function_name[name] = set(sorted(tests, key=rank)[:limit])

    mutmut_main.collect_or_load_stats = collect_then_limit


class Sources:
    """Functions' source and docstrings, read once per file: ``{name: (source, docstring)}``
    for every function and method in it (by bare name; the last of a name wins)."""

    def __init__(self) -> None:
        self._files: dict[Path, dict[str, tuple[str, str]]] = {}

    def functions(self, path: Path) -> dict[str, tuple[str, str]]:
        if path not in self._files:
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            self._files[path] = {
                node.name: (ast.get_source_segment(text, node) or "", ast.get_docstring(node) or "")
                for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)
            }
        return self._files[path]

    def of_test(self, node_id: str) -> str:
        """A test function's source by its pytest node id (parameters ignored)."""
        path, _, rest = node_id.partition("::")
        function = rest.split("[")[0].split("::")[-1]
        return self.functions(ROOT / path).get(function, ("", ""))[0]

    def words_of(self, mangled: str) -> set[str]:
        """The words of a mutated function's name and docstring, by mutmut's mangled name
        (``hub.core.auth.x_authenticate``, ``hub.web.api.framework.xǁParamǁschema``)."""
        module, _, function = mangled.rpartition(".")
        name = function.removeprefix("x").strip("_ǁ").split("ǁ")[-1]
        docs = self.functions(ROOT / (module.replace(".", "/") + ".py"))
        doc = (docs.get(name) or docs.get("_" + name) or ("", ""))[1]
        words = {w for w in name.lower().split("_") if len(w) > 2}
        return words | {w for w in re.findall(r"[a-z]{5,}", doc.lower()) if w not in COMMON}


# Words nearly every test or docstring uses: they rank nothing.
COMMON = frozenset({"which", "there", "their", "would", "other", "every", "about", "never",
                    "order", "orders", "tenant", "when", "where", "these", "those", "being",
                    "after", "before", "while", "should", "could"})


def restore_state(modules: list[str]) -> None:
    """Give a fresh mutants/ the verdicts of the last run (kept in the repository), so mutmut
    re-tests only functions whose source changed since."""
    if not STATE.exists():
        return
    saved = json.loads(STATE.read_text())
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        if module in saved and not meta.exists():
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({
                **saved[module], "type_check_error_by_key": {}, "durations_by_key": {},
                "estimated_durations_by_key": {},
            }))


def save_state(modules: list[str]) -> None:
    saved = json.loads(STATE.read_text()) if STATE.exists() else {}
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        if meta.exists():
            data = json.loads(meta.read_text())
            saved[module] = {key: dict(sorted(data[key].items()))
                             for key in ("exit_code_by_key", "hash_by_function_name")}
    STATE.write_text(json.dumps(dict(sorted(saved.items())), indent=0) + "\n")


def run_mutmut(modules: list[str], tests: list[str], max_children: int | None,
               mutants: list[str]) -> None:
    """Run mutmut's own ``run`` command in this process, after narrowing its configuration."""
    from mutmut import configuration

    config = configuration.config()
    unknown = [m for m in modules if m not in config.only_mutate]
    if unknown:
        sys.exit(f"--module must be one of [tool.mutmut] only_mutate; not: {', '.join(unknown)}")
    if modules:
        config.only_mutate = modules
    if tests:
        config.pytest_add_cli_args_test_selection = tests

    from mutmut.__main__ import cli

    args = ["run"] + ([f"--max-children={max_children}"] if max_children else []) + mutants
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit as stop:  # mutmut exits non-zero when the clean test run fails
        if stop.code:
            raise


def read_statuses(modules: list[str]) -> dict[str, str]:
    """Every mutant of the given modules with mutmut's verdict, from its ``.meta`` files."""
    from mutmut.stats import status_by_exit_code

    statuses: dict[str, str] = {}
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        if not meta.exists():
            continue
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        statuses.update({name: status_by_exit_code[code] for name, code in exit_codes.items()})
    return statuses


def build_report(modules: list[str], statuses: dict[str, str],
                 previous: dict[str, Any] | None) -> dict[str, Any]:
    """The results file's content: score, counts and every mutant that ever went unnoticed,
    with its verdict. The score is detected / (detected + undetected): a mutant is detected
    when a test failed on it, or it made the tests hang (timeout) or die; undetected when the
    tests passed, and also when no test ran the function at all ("no tests" — mutmut leaves
    those out of its own figure, which would flatter untested code). An undetected mutant
    explained as equivalent still counts against the score."""
    counts = Counter(statuses.values())
    detected = sum(counts.get(s, 0) for s in DETECTED)
    undetected = sum(counts.get(s, 0) for s in UNDETECTED)
    total = detected + undetected
    score = round(100 * detected / total, 1) if total else None
    verdicts = {s["mutant"]: s.get("verdict") for s in (previous or {}).get("survivors", [])}
    ever = sorted({n for n, status in statuses.items() if status in UNDETECTED}
                  | {n for n in verdicts if n in statuses})
    survivors = []
    for name in ever:
        verdict = verdicts.get(name)
        if statuses[name] in DETECTED:
            verdict = "killed-later"
        elif verdict == "killed-later":  # a test that caught it no longer does
            verdict = None
        survivors.append({"mutant": name, "status": statuses[name], "verdict": verdict})
    return {"score": score, "modules": modules, "counts": dict(sorted(counts.items())),
            "survivors": survivors}


def explain(previous: dict[str, Any], statuses: dict[str, str],
            reasons: list[list[str]]) -> dict[str, Any]:
    """The previous results with "equivalent: <reason>" verdicts added for undetected mutants."""
    verdicts = {s["mutant"]: s.get("verdict") for s in previous.get("survivors", [])}
    for pattern, reason in reasons:
        names = [n for n in statuses if fnmatch.fnmatchcase(n, pattern)]
        undetected = [n for n in names if statuses[n] in UNDETECTED]
        if not undetected:
            sys.exit(f"no undetected mutant matches {pattern!r}")
        verdicts.update({n: f"equivalent: {reason}" for n in undetected})
    return {**previous, "survivors": [{"mutant": n, "verdict": v} for n, v in verdicts.items()]}


def kill_by_hand(modules: list[str], pairs: list[list[str]]) -> None:
    """Run each test against its mutant as mutmut would (in mutants/, the mutant chosen by
    ``MUTANT_UNDER_TEST``) and write the verdict into mutmut's own ``.meta`` file. The test
    must pass on the original code first, or its failure would prove nothing."""
    import subprocess

    for name, test in pairs:
        meta = next((ROOT / "mutants" / f"{m}.meta" for m in modules
                     if name.startswith(m.removesuffix(".py").replace("/", ".") + ".")), None)
        if meta is None or not meta.exists() or name not in json.loads(meta.read_text())[
                "exit_code_by_key"]:
            sys.exit(f"no mutant {name!r} in mutants/; run the mutation run first")
        codes = []
        for chosen in ("", name):
            env = {**os.environ, "MUTANT_UNDER_TEST": chosen}
            codes.append(subprocess.call(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
                cwd=ROOT / "mutants", env=env, stdout=subprocess.DEVNULL))
        if codes[0] != 0:
            sys.exit(f"{test} fails on the original code (exit {codes[0]}); it proves nothing")
        if codes[1] != 1:
            sys.exit(f"{test} does not fail on {name} (exit {codes[1]})")
        data = json.loads(meta.read_text())
        data["exit_code_by_key"][name] = 1  # mutmut's code for "a test failed": killed
        meta.write_text(json.dumps(data))
        print(f"{name}: killed by {test}")


def forget_timeouts(
    modules: list[str], status_by_exit_code: dict[int | None, str] | None = None
) -> list[str]:
    """Set every timed-out mutant of the given modules back to "not checked" in mutmut's own
    ``.meta`` files. A timeout counts as detected, so one that a pause or a loaded machine
    caused would flatter the score. (``status_by_exit_code``: mutmut's table by default.)"""
    if status_by_exit_code is None:
        from mutmut.stats import status_by_exit_code

    forgotten = []
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        if not meta.exists():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code is not None and status_by_exit_code[code] == "timeout":
                codes[name] = None
                forgotten.append(name)
        meta.write_text(json.dumps(data))
    return sorted(forgotten)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)  # mutmut reads pyproject.toml and writes mutants/ in the working directory
    from mutmut import configuration

    modules = args.module or list(configuration.config().only_mutate)
    if args.recheck_timeouts:
        for name in forget_timeouts(modules):
            print(f"{name}: timed out; checked again next run")
    if args.killed_by:
        kill_by_hand(modules, args.killed_by)
    elif args.recheck_timeouts:
        pass
    elif not args.report_only and not args.equivalent:
        restore_state(modules)
        if args.tests_per_function:
            limit_tests_per_function(args.tests_per_function)
        rerun = [name for name, status in read_statuses(modules).items()
                 if status in UNDETECTED] if args.rerun_survivors else []
        if args.rerun_survivors and not rerun:
            sys.exit("no survivors to run again")
        run_mutmut(args.module, args.tests, args.max_children, rerun)

    statuses = read_statuses(modules)
    if not statuses:
        print("no mutmut results found; run without --report-only first", file=sys.stderr)
        return 1
    save_state(modules)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else None
    if args.equivalent:
        previous = explain(previous or {}, statuses, args.equivalent)
    report = build_report(modules, statuses, previous)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    unreviewed = sum(1 for s in report["survivors"]
                     if s["status"] in UNDETECTED and not s["verdict"])
    print(f"mutation score: {report['score']}% ({report['counts']}); "
          f"{unreviewed} undetected mutant(s) without a verdict; "
          f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
