"""Ships the front end (``js/``) inside the package as ``rtvoice_widget/static``.

Everything else is declared in ``pyproject.toml``. The ESM sources live in ``js/`` at the top of
the repo (a checkout and an editable install read them there, see ``rtvoice_widget/_assets.py``);
a wheel has no ``js/`` beside the package, so the build copies the files the widget loads into
the package. Tests and ``package.json`` stay out.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
FRONT_END = ["*.js", "*.css", "lib/*.js"]


class BuildWithFrontEnd(build_py):
    def run(self) -> None:
        super().run()
        static = Path(self.build_lib) / "rtvoice_widget" / "static"
        for pattern in FRONT_END:
            for source in sorted((ROOT / "js").glob(pattern)):
                target = static / source.relative_to(ROOT / "js")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithFrontEnd})
