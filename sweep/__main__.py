from __future__ import annotations

from sweep.cli import main_entry

main_entry()
