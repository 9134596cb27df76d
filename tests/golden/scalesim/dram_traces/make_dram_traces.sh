#!/usr/bin/env bash
# SCALE-Sim 2.0.2's DRAM traces of tiny_conv on three USER-bandwidth configs (os/ws/is), layers 0, 1, 5, 6,
# gzipped. Needs SCALE-Sim 2.0.2 in its own venv (default /work/main/.venv-scalesim:
#   ~/.pyenv/versions/3.11.7/bin/python -m venv .venv-scalesim && .venv-scalesim/bin/pip install scalesim==2.0.2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gold="$here/.."
PY="${SCALESIM_PYTHON:-$here/../../../../.venv-scalesim/bin/python}"
tmp="$(mktemp -d)"
for c in os_4x8_user3 ws_8x4_user4 is_4x4_user2; do
  (cd "$tmp" && "$PY" -c "
from scalesim.scale_sim import scalesim
s = scalesim(save_disk_space=False, verbose=False, config='$gold/configs/$c.cfg',
             topology='$gold/topologies/tiny_conv.csv', input_type_gemm=False)
s.run_scale(top_path='$tmp/run_$c')" > "$tmp/log" 2>&1) || { cat "$tmp/log"; exit 1; }
  for l in 0 1 5 6; do
    mkdir -p "$here/${c}__tiny_conv/layer$l"
    for f in IFMAP FILTER OFMAP; do
      gzip -9 -n -c "$tmp/run_$c/$c/layer$l/${f}_DRAM_TRACE.csv" > "$here/${c}__tiny_conv/layer$l/${f}_DRAM_TRACE.csv.gz"
    done
  done
  echo "$c ok"
done
rm -rf "$tmp"
