#!/usr/bin/env python
import os
import sys

PRODUCTION_HINTS = ("DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")


def main() -> None:
    # A bare checkout with nothing configured is a developer's machine: run management
    # commands on the embedded default. Set any production variable and nothing is assumed.
    if not any(os.environ.get(name) for name in PRODUCTION_HINTS):
        os.environ["DEBUG"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
