#!/usr/bin/env bash
# Regenerate the golden SCALE-Sim 2.0.2 reports in reports/<config>__<topology>/ (run from anywhere).
# Needs SCALE-Sim 2.0.2 in its own venv (default /work/main/.venv-scalesim, made with
#   ~/.pyenv/versions/3.11.7/bin/python -m venv .venv-scalesim && .venv-scalesim/bin/pip install scalesim==2.0.2).
# Each case is: python -m scalesim.scale -c configs/<cfg>.cfg -t topologies/<topo>.csv -i <conv|gemm> -p <tmp>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY="${SCALESIM_PYTHON:-$here/../../../.venv-scalesim/bin/python}"
tmp="$(mktemp -d)"
for cfg in "$here"/configs/*.cfg; do
  c="$(basename "$cfg" .cfg)"
  for topo in tiny_conv:conv tiny_gemm:gemm; do
    t="${topo%%:*}"; kind="${topo##*:}"
    out="$here/reports/${c}__${t}"
    mkdir -p "$out"
    (cd "$tmp" && "$PY" -m scalesim.scale -c "$cfg" -t "$here/topologies/$t.csv" -i "$kind" -p "$tmp/run" > "$tmp/log" 2>&1) || { cat "$tmp/log"; exit 1; }
    rn="$(sed -n "s/^run_name *= *//p" "$cfg" | tr -d " \r")"
    cp "$tmp/run/$rn"/{COMPUTE_REPORT,BANDWIDTH_REPORT,DETAILED_ACCESS_REPORT}.csv "$out/"
    rm -rf "$tmp/run"
    echo "$c $t ok"
  done
done
true
# SRAM traces of one small layer (SCALE-Sim's save_disk_space=False), for the trace writer's test
out="$here/traces/is_4x4_user2__trace_conv"; mkdir -p "$out"
(cd "$tmp" 2>/dev/null || tmp="$(mktemp -d)"; cd "$tmp" && "$PY" -c "
from scalesim.scale_sim import scalesim
s = scalesim(save_disk_space=False, verbose=False, config='$here/configs/is_4x4_user2.cfg',
             topology='$here/topologies/trace_conv.csv', input_type_gemm=False)
s.run_scale(top_path='$tmp/run')" > "$tmp/log" 2>&1) || { cat "$tmp/log"; exit 1; }
cp "$tmp"/run/is_4x4_user2/layer0/*_SRAM_TRACE.csv "$out/"
rm -rf "$tmp"
echo "traces ok"
