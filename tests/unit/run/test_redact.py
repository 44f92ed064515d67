"""The command's own credentials redacted from its logged argv."""

from __future__ import annotations

import pytest

from carbonwrap.run.redact import REDACTED, redact_argv


@pytest.mark.parametrize(
    ("argv", "logged"),
    [
        (["train.py", "--api-key", "K"], ["train.py", "--api-key", REDACTED]),
        (["train.py", "--api-key=K", "--lr=3"], ["train.py", f"--api-key={REDACTED}", "--lr=3"]),
        (["x", "--HF-TOKEN", "K", "y"], ["x", "--HF-TOKEN", REDACTED, "y"]),
        (["x", "-password", "K"], ["x", "-password", REDACTED]),
        (["x", "--client-secret", "K"], ["x", "--client-secret", REDACTED]),
        (["x", "--authorization", "K"], ["x", "--authorization", REDACTED]),
        (["x", "--use-keys", "--verbose"], ["x", "--use-keys", "--verbose"]),
        (["x", "--token"], ["x", "--token"]),
        (["env", "HF_TOKEN=K", "API_KEY=K", "LR=3", "python"],
         ["env", f"HF_TOKEN={REDACTED}", f"API_KEY={REDACTED}", "LR=3", "python"]),
        (["git", "clone", "https://me:K@example.org/r.git"],
         ["git", "clone", f"https://me:{REDACTED}@example.org/r.git"]),
        (["x", "-p", "K"], ["x", "-p", "K"]),  # a single letter could mean anything: kept
        (["x", "a=b=c", "=K"], ["x", "a=b=c", "=K"]),
    ],
)  # fmt: skip
def test_redaction_rules(argv: list[str], logged: list[str]) -> None:
    assert redact_argv(argv) == logged
