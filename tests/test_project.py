"""Project hygiene that a green run could otherwise hide."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_models_and_migrations_agree():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_ruff_finds_nothing():
    exe = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(exe), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


def test_mypy_strict_finds_nothing_in_the_pure_rules():
    """protocols/ (pure Python) and monitoring/rules.py, strict ([tool.mypy] in pyproject.toml)."""
    exe = Path(sys.executable).with_name("mypy")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout
    assert "Success: no issues found in 13 source files" in result.stdout


def test_vendored_assets_are_served_from_static_not_a_cdn():
    base = (ROOT / "templates" / "base.html").read_text()
    assert "https://" not in base and "http://" not in base
    for path in ("vendor/bootstrap/bootstrap.min.css", "vendor/chartjs/chart.umd.min.js"):
        assert (ROOT / "static" / path).exists()
