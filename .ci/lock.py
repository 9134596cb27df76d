"""The lock file's link to pyproject.toml.

`requirements.lock` pins every transitive dependency (exact version and hashes) for Python 3.10 on
Linux x86-64; `make lock` regenerates it with uv and stamps it with a digest of what pyproject.toml
asks for (requires-python, dependencies, the dev extra). `make test` and `make demo` run `check`, which
fails with one line when pyproject.toml's dependencies changed since the lock was made.

    python .ci/lock.py stamp requirements.lock   # after uv pip compile
    python .ci/lock.py check requirements.lock   # exit 2 and one line on a mismatch
    python .ci/lock.py check LOCK PYPROJECT      # another project file (the tests)
"""
import hashlib
import json
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, or the copy pip vendors (the check runs before .venv exists)
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "# pyproject-dependencies-sha256: "


def digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    wanted = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "dev": sorted(project.get("optional-dependencies", {}).get("dev", [])),
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ("stamp", "check"):
        print("usage: lock.py stamp|check LOCKFILE [PYPROJECT]", file=sys.stderr)
        return 2
    action, lock = argv[0], Path(argv[1])
    pyproject = Path(argv[2]) if len(argv) == 3 else ROOT / "pyproject.toml"
    if action == "stamp":
        body = [ln for ln in lock.read_text().splitlines() if not ln.startswith(PREFIX)]
        lock.write_text("\n".join([PREFIX + digest(pyproject)] + body) + "\n")
        return 0
    if not lock.exists():
        print(f"{lock} is missing: run `make lock` to create it from pyproject.toml", file=sys.stderr)
        return 2
    stamped = next((ln[len(PREFIX):].strip() for ln in lock.read_text().splitlines()
                    if ln.startswith(PREFIX)), None)
    if stamped != digest(pyproject):
        print(f"pyproject.toml's dependencies no longer match {lock.name}: run `make lock` "
              "(then re-measure what the new versions move)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
