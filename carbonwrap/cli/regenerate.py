"""Rewrite the generated completions and man pages from the CLI's definition.

python -m carbonwrap.cli.regenerate          # rewrite completions/ and man/ in the checkout
python -m carbonwrap.cli.regenerate --check  # exit 1 if what is committed is stale
"""

import sys
from pathlib import Path

from carbonwrap.cli.definition import cli
from carbonwrap.cli.docs import generated_files


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent.parent
    stale = []
    for relative, content in generated_files(cli).items():
        target = root / relative
        current = target.read_text() if target.exists() else None
        if current == content:
            continue
        stale.append(relative)
        if "--check" not in argv:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    if "--check" in argv and stale:
        print(
            f"stale: {', '.join(stale)}; run: python -m carbonwrap.cli.regenerate",
            file=sys.stderr,
        )
        return 1
    for relative in stale:
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
