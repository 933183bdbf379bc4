from __future__ import annotations

from sweep.cli.main import main_entry

main_entry()
