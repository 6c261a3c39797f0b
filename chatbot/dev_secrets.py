"""First-run secrets for development mode, kept in a git-ignored `.env`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

GENERATORS: dict[str, Callable[[], str]] = {
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "JWT_SECRET": lambda: secrets.token_urlsafe(48),
    "FERNET_KEYS": lambda: Fernet.generate_key().decode(),
    "SANDBOX_APP_SECRET": lambda: secrets.token_urlsafe(32),
}


def ensure_dev_secrets(env_file: Path, present: dict[str, str]) -> dict[str, str]:
    """Append a generated value to `env_file` for each secret absent from `present`; return them.

    Written once so restarts keep the same keys: regenerating FERNET_KEYS would make stored
    secrets unreadable and a new JWT_SECRET would log everybody out.
    """
    missing = {name: make() for name, make in GENERATORS.items() if not present.get(name)}
    if missing:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        with env_file.open("a", encoding="utf-8") as fh:
            fh.write("# generated for development on first run; do not commit\n")
            for name, value in missing.items():
                fh.write(f"{name}={value}\n")
        env_file.chmod(0o600)
    return missing
