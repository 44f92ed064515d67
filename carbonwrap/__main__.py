"""`python -m carbonwrap` entry point."""

from carbonwrap.entry import main

if __name__ == "__main__":
    main()
