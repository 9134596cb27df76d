#!/usr/bin/env bash
# Regenerate the golden SCALE-Sim 3.0.0 reports in reports/<config>__<topology>/ (run from anywhere).
# Needs SCALE-Sim 3.0.0 in its own venv (default /work/main/benchmarks/.venv-scalesim3, made with
#   python3.11 -m venv benchmarks/.venv-scalesim3 && benchmarks/.venv-scalesim3/bin/pip install scalesim==3.0.0 'numpy<2.4').
# Each case is:
#   python -m scalesim.scale -c configs/<cfg>.cfg -t topologies/<topo>.csv -l layout_unused.csv -i <conv|gemm> -p <tmp>
# (3.0.0 exits without -l even with custom layouts off; it always writes SRAM and DRAM traces, which are dropped here.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY="${SCALESIM_PYTHON:-$here/../../../benchmarks/.venv-scalesim3/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for cfg in "$here"/configs/*.cfg; do
  c="$(basename "$cfg" .cfg)"
  for topo in tiny_conv:conv tiny_gemm:gemm sparse_conv:conv sparse_gemm:gemm; do
    t="${topo%%:*}"; kind="${topo##*:}"
    out="$here/reports/${c}__${t}"
    rm -rf "$out"; mkdir -p "$out"
    (cd "$tmp" && "$PY" -m scalesim.scale -c "$cfg" -t "$here/topologies/$t.csv" -l "$here/layout_unused.csv" \
        -i "$kind" -p "$tmp/run" > "$tmp/log" 2>&1) || { cat "$tmp/log"; exit 1; }
    rn="$(sed -n "s/^run_name *= *//p" "$cfg" | tr -d " \r")"
    cp "$tmp/run/$rn"/*_REPORT.csv "$out/"
    rm -rf "$tmp/run"
    echo "$c $t ok"
  done
done
