"""Package layout (the rest of the metadata is in pyproject.toml).

Every `gdo_utils*` package is found automatically; the goal profiles (params/profiles/), the training recipes
(params/recipes/, as gdo_utils/recipes/) and the
numbered notebooks (notebooks/) are shipped inside the package as gdo_utils/profiles/ and
gdo_utils/notebooks/, so `pip install .` + `gdo-repro run` works from any directory. In the checkout
they stay where users edit them; gdo_utils/registry.py finds either copy. Folders of package data
without an `__init__.py` (the published numbers, the model families' template fixtures) are listed as packages of their own, so setuptools ships
their files without its "data without __init__.py" warning.
"""
from setuptools import find_packages, setup

SHIPPED = {"gdo_utils.profiles": "params/profiles", "gdo_utils.recipes": "params/recipes", "gdo_utils.notebooks": "notebooks"}
DATA_PACKAGES = ["gdo_utils.report.paper_numbers", "gdo_utils.family_fixtures"]

setup(packages=find_packages(include=["gdo_utils", "gdo_utils.*"]) + DATA_PACKAGES + sorted(SHIPPED),
      package_dir=SHIPPED)
