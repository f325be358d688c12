"""``python -m cgclip`` runs the command line."""

from cgclip.cli import main

raise SystemExit(main())
