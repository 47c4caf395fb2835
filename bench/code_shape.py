"""The shape of the code in one command: the largest classes and functions, and duplicated blocks.

    python bench/code_shape.py [--top N] [--package DIR]

Counts lines per class and per function (methods included) with ``ast`` over the package
(``rtvoice_widget/`` by default), from the ``def``/``class`` line (decorators included) to the
last line of the body. Then, when the ``duplicates`` command is on PATH, the first line of
``duplicates --most 200`` over the repository's tracked files less the generated front-end bundle:
the count of pairs of places sharing six or more lines. Run it on two commits to compare a refactoring's before and after (issue 14).
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = "rtvoice_widget/static/"  # built from js/ by `npm run build`


def _spans(package: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    classes, functions = [], []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            row = (node.end_lineno - start + 1, f"{rel}:{node.lineno} {node.name}")
            (classes if isinstance(node, ast.ClassDef) else functions).append(row)
    return sorted(classes, reverse=True), sorted(functions, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=5, help="rows per list (default 5)")
    parser.add_argument("--package", default=str(ROOT / "rtvoice_widget"))
    args = parser.parse_args()
    classes, functions = _spans(Path(args.package).resolve())
    for title, rows in (("largest classes", classes), ("largest functions", functions)):
        print(f"{title} (lines):")
        for lines, where in rows[: args.top]:
            print(f"  {lines:5d}  {where}")
    if shutil.which("duplicates") is None:
        print("duplicated blocks: (the duplicates command is not on PATH)")
        return
    # The committed esbuild bundle (rtvoice_widget/static/) repeats js/ by construction: count
    # the sources only, from a copy of the tracked files without it.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="code-shape-") as tmp:
        for name in tracked:
            if name.startswith(GENERATED) or not (ROOT / name).is_file():
                continue
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, target)
        out = subprocess.run(["duplicates", "--most", "200", "--seconds", "120", "--repo", tmp],
                             capture_output=True, text=True, check=False).stdout
    print(f"duplicated blocks (without {GENERATED}):", out.splitlines()[0] if out else "(no output)")


if __name__ == "__main__":
    main()
