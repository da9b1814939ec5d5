"""Entry point: ``python app.py [flags]`` runs the chatui web app (see README)."""

from __future__ import annotations

import sys

from chatui.cli import main

if __name__ == "__main__":
    sys.exit(main())
