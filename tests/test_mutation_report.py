"""bench/mutation_report.py: reading mutmut's CLI output into the table of bench/results/mutation.md."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location(
    "mutation_report", Path(__file__).resolve().parents[1] / "bench" / "mutation_report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

SOURCE = '''import numpy as np


class Buffer:
    def __init__(self, capacity):
        self.capacity = capacity

    @property
    def full(self):
        # a comment above the line
        return self.size >= self.capacity


def grow(n):
    x = n + 1
    return x * 2
'''

# as `mutmut show` prints them: the function alone, methods dedented
SHOW_METHOD = '''# pkg.mod.xǁBufferǁfull__mutmut_2: survived
--- pkg/mod.py
+++ pkg/mod.py
@@ -1,4 +1,4 @@
 @property
 def full(self):
     # a comment above the line
-    return self.size >= self.capacity
+    return self.size > self.capacity'''

SHOW_FUNCTION = '''# pkg.mod.x_grow__mutmut_3: survived
--- pkg/mod.py
+++ pkg/mod.py
@@ -1,3 +1,3 @@
 def grow(n):
     x = n + 1
-    return x * 2
+    return x * 3'''


def test_results_output_is_parsed_into_statuses():
    out = ("    pkg.mod.x_grow__mutmut_1: killed\n    pkg.mod.xǁBufferǁfull__mutmut_2: survived\n"
           "    pkg.mod.x_grow__mutmut_10: no tests\nWarning: something else\n")
    assert report.parse_results(out) == {"pkg.mod.x_grow__mutmut_1": "killed",
                                         "pkg.mod.xǁBufferǁfull__mutmut_2": "survived",
                                         "pkg.mod.x_grow__mutmut_10": "no tests"}
    assert report.module_of("pkg.mod.xǁBufferǁfull__mutmut_2") == "pkg.mod"
    assert report.function_of("pkg.mod.xǁBufferǁfull__mutmut_2") == ("Buffer", "full")
    assert report.function_of("pkg.mod.x_grow__mutmut_10") == (None, "grow")
    assert sorted(["a.x_f__mutmut_10", "a.x_f__mutmut_9"], key=report.mutant_key) == [
        "a.x_f__mutmut_9", "a.x_f__mutmut_10"]


def test_a_mutation_is_placed_on_its_line_of_the_source(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(SOURCE)
    path, line, mutation = report.locate("pkg.mod.xǁBufferǁfull__mutmut_2", SHOW_METHOD, tmp_path)
    assert (path, line) == ("pkg/mod.py", 11)
    assert mutation == "`return self.size >= self.capacity` → `return self.size > self.capacity`"
    assert report.locate("pkg.mod.x_grow__mutmut_3", SHOW_FUNCTION, tmp_path)[:2] == ("pkg/mod.py", 16)


def test_long_lines_are_cut_to_what_changed():
    old = 'dims = {"obs": (obs_dim,), "act": (act_dim,), None: ()}'
    new = 'dims = {"XXobsXX": (obs_dim,), "act": (act_dim,), None: ()}'
    assert report.compact(old, new) == ('`dims = {"obs": (obs_dim,), "act":…` → '
                                        '`dims = {"XXobsXX": (obs_dim,), "act":…`')
    old = "ends = rng.integers(store.oldest, store.written, 2 * need + 8)"
    assert report.compact(old, old.replace("2 *", "3 *")) == (
        "`…rng.integers(store.oldest, store.written, 2 * need + 8)` → "
        "`…rng.integers(store.oldest, store.written, 3 * need + 8)`")
    assert report.compact("x = f(a, b)", "") == "`x = f(a, b)` → `(nothing)`"


def test_equivalent_mutants_leave_the_denominator():
    run = {"date": "2026-12-05", "commit": "abc", "mutmut": "3.8.1", "jobs": 2, "host": "2 CPUs",
           "setup_s": 60.0, "total_s": 600.0, "tests": "tests/ -m unit"}
    survivor = {"name": "pkg.mod.x_grow__mutmut_3", "file": "pkg/mod.py", "line": 16,
                "mutation": "`x * 2` → `x * 3`"}
    data = {"modules": {"pkg": {"generated": 10, "killed": 6, "survived": 2, "no_tests": 1,
                                "timeout_suspicious": 1, "not_checked": 0, "other": {},
                                "wall_s": 120.0, "run": run, "untested_functions": [],
                                "survivors": [survivor, dict(survivor, name="pkg.mod.x_grow__mutmut_4")]}}}
    md = report.write_markdown(data, {"pkg.mod.x_grow__mutmut_3": "x is 0 | always"})
    assert "| `pkg` | 10 | 6 | 2 | 1 | 1 | 1 | 66.7 % | 2.0 min |" in md
    assert "| `pkg.mod.x_grow__mutmut_3` | x is 0 \\| always |" in md
    assert "| `pkg.mod.x_grow__mutmut_4` |  |" in md
    md = report.write_markdown(data, {"pkg.mod.x_grow__mutmut_99": "gone"})
    assert "60.0 %" in md and "Stale" in md and "`pkg.mod.x_grow__mutmut_99`" in md
