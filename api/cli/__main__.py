"""``python -m api.cli`` runs the ``gradeline`` command."""

import sys

from api.cli import main

sys.exit(main())
