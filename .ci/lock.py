"""The lock file's link to pyproject.toml.

`requirements.lock` pins every transitive dependency (exact version and hashes) for Python 3.10 on
Linux x86-64; `make lock` regenerates it with uv and stamps it with a digest of what pyproject.toml
asks for (requires-python, dependencies, the dev extra). `make test` and `make demo` run `check`, which
fails with one line when pyproject.toml's dependencies changed since the lock was made.

    python .ci/lock.py stamp requirements.lock   # after uv pip compile
    python .ci/lock.py check requirements.lock   # exit 2 and one line on a mismatch
"""
import hashlib
import json
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "# pyproject-dependencies-sha256: "


def digest() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "dev": sorted(project.get("optional-dependencies", {}).get("dev", [])),
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("stamp", "check"):
        print("usage: lock.py stamp|check LOCKFILE", file=sys.stderr)
        return 2
    action, lock = argv[0], Path(argv[1])
    if action == "stamp":
        body = [ln for ln in lock.read_text().splitlines() if not ln.startswith(PREFIX)]
        lock.write_text("\n".join([PREFIX + digest()] + body) + "\n")
        return 0
    if not lock.exists():
        print(f"{lock} is missing: run `make lock` to create it from pyproject.toml", file=sys.stderr)
        return 2
    stamped = next((ln[len(PREFIX):].strip() for ln in lock.read_text().splitlines()
                    if ln.startswith(PREFIX)), None)
    if stamped != digest():
        print(f"pyproject.toml's dependencies no longer match {lock.name}: run `make lock` "
              "(then re-measure what the new versions move)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
