"""Entry point of the frozen bundle: the same `app.cli:main` as the `vertebroplan` script."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
