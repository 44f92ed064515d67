"""`python -m carbonwrap` entry point."""

from carbonwrap.cli import main

if __name__ == "__main__":
    main()
