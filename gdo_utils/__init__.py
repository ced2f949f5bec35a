"""gdo_utils: the tested package behind the GDO / OFA reproducibility notebooks.

Stages (each one function with a typed config, see ARCHITECTURE.md): pool -> embed -> descriptors
-> ofa -> subsets -> train -> evaluate -> report.
"""
__version__ = "0.1.0"
