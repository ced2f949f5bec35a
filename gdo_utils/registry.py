"""Where the kit's shipped files are: goal profiles, training recipes, notebooks (package data), in a checkout or installed.

In a checkout they live at the top level (params/profiles/, notebooks/). `pip install .` ships the same
files inside the package (gdo_utils/profiles/, gdo_utils/recipes/, gdo_utils/notebooks/; setup.py maps the folders), so
`gdo-repro` works from any directory. Each lookup tries the installed copy, then the checkout.
"""
from __future__ import annotations

from pathlib import Path

from .chain import NOTEBOOK_RE

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
SHIPPED = {"profiles": "params/profiles", "notebooks": "notebooks", "recipes": "params/recipes"}  # package data name -> checkout folder


def shipped_dir(name: str) -> Path:
    """The folder of a kind of shipped file: installed (gdo_utils/<name>/) or in the checkout."""
    if name not in SHIPPED:
        raise KeyError(f"unknown shipped folder {name!r}; known: {sorted(SHIPPED)}")
    for d in (PACKAGE_DIR / name, CHECKOUT_DIR / SHIPPED[name]):
        if d.is_dir():
            return d
    raise FileNotFoundError(f"{name} not found in {PACKAGE_DIR / name} (installed) nor "
                            f"{CHECKOUT_DIR / SHIPPED[name]} (checkout): reinstall the package")


def default_profiles_dir() -> Path:
    """The goal profiles shipped with the kit (every *.yaml there; '_' files are templates)."""
    return shipped_dir("profiles")


def notebooks_dir(explicit: str | Path | None = None) -> Path:
    """The numbered notebooks: `explicit`, else ./notebooks when it holds some, else the shipped ones."""
    if explicit is not None:
        d = Path(explicit).expanduser().resolve()
        if not d.is_dir():
            raise FileNotFoundError(f"--notebooks {explicit}: no such folder")
        return d
    here = Path.cwd() / "notebooks"
    if here.is_dir() and any(NOTEBOOK_RE.match(p.name) for p in here.iterdir()):
        return here.resolve()
    return shipped_dir("notebooks")


def list_notebooks(explicit: str | Path | None = None) -> list[Path]:
    """The numbered notebooks `gdo-repro run` would execute, in order."""
    d = notebooks_dir(explicit)
    return sorted(p for p in d.glob("*.ipynb") if NOTEBOOK_RE.match(p.name))
