#!/usr/bin/env bash
# Build DRAMsim3 (umd-memsys/DRAMsim3, its vendored ext/ only: no downloads) and our trace driver.
#   benchmarks/dramsim3/build.sh [DRAMSIM3_SOURCE]
# DRAMSIM3_SOURCE: a checkout or a bare git dir of https://github.com/umd-memsys/DRAMsim3 (default: the
# mirror at /work/.mirror/umd-memsys+DRAMsim3/repo, commit 2981759 "fix DTHERMAL compile error").
# Output: benchmarks/dramsim3/build/{src,lib}/ and benchmarks/dramsim3/build/driver (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-/work/.mirror/umd-memsys+DRAMsim3/repo}"
b="$here/build"
mkdir -p "$b"
if [ ! -f "$b/src/CMakeLists.txt" ]; then
  rm -rf "$b/src"; mkdir -p "$b/src"
  if [ -d "$src/.git" ] || [ ! -f "$src/CMakeLists.txt" ]; then
    git --git-dir="$( [ -d "$src/.git" ] && echo "$src/.git" || echo "$src")" archive HEAD | tar -x -C "$b/src"
    git --git-dir="$( [ -d "$src/.git" ] && echo "$src/.git" || echo "$src")" rev-parse HEAD > "$b/src/COMMIT"
  else
    cp -r "$src/." "$b/src/"
  fi
fi
cmake -S "$b/src" -B "$b/lib" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$b/lib" --target dramsim3 -j "${JOBS:-2}"
g++ -O2 -std=c++11 -I"$b/src/src" -I"$b/src/ext/headers" -I"$b/src/ext/fmt/include" -DFMT_HEADER_ONLY=1 \
    "$here/driver.cc" -o "$b/driver" -L"$b/src" -ldramsim3 -Wl,-rpath,"$b/src"
echo "built $b/driver (DRAMsim3 $(cat "$b/src/COMMIT" 2>/dev/null || echo '?'))"
