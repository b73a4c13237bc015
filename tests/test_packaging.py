"""Installing Keiko prints no setuptools deprecation warnings: pyproject.toml is read by
setuptools' own configuration loader with every warning turned into an error."""

from __future__ import annotations

import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_has_no_deprecated_setuptools_configuration() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.name == "keiko"
    assert dist.metadata.license_expression == "Apache-2.0"
