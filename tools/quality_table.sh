#!/usr/bin/env bash
# The engine's quality table on the sample model: perplexity of original, RTN and GPTQ at
# 4-bit per-row, 4-bit g32, 3-bit g32 and 2-bit g32, with and without act-order; calibration
# 128 x 256 tokens of the TinyStories sample (seed 0), evaluation with seqlen 512 on the
# TinyStories sample and on WikiText-2. Every linear module is quantized (--pad-unloadable: the
# MLP's 172-wide modules too, which a default run keeps in fp16 for the GPTQ loaders), as
# tests/tst_quantize_model.cpp pins it. Prints a Markdown table; reports go to $OUT_DIR.
#   tools/quality_table.sh [build/app/gptqw] [data dir]
set -euo pipefail
GPTQW=${1:-build/app/gptqw}
DATA=${2:-${GPTQW_DATA_DIR:-../shared/data}}
OUT_DIR=${OUT_DIR:-$(mktemp -d)}
settings=("4 -1" "4 -1 --act-order" "4 32" "4 32 --act-order" "3 32" "3 32 --act-order" "2 32" "2 32 --act-order")
echo "| setting | eval | original | RTN | GPTQ | GPTQ recovers |"
echo "|---|---|---|---|---|---|"
for s in "${settings[@]}"; do
  read -r bits gs act <<<"$s"
  for text in tinystories-sample wikitext-2-raw-test; do
    name="${bits}bit-g${gs}${act:+-act}-${text}"
    "$GPTQW" compare --model "$DATA/models/stories260K" --calib "$DATA/text/tinystories-sample.txt" \
      --nsamples 128 --seqlen 256 --seed 0 --bits "$bits" --group-size "$gs" $act --pad-unloadable \
      --eval "$DATA/text/$text.txt" --eval-seqlen 512 --report "$OUT_DIR/$name.json" --quiet >/dev/null
    python3 - "$OUT_DIR/$name.json" "$bits" "$gs" "${act:-}" "$text" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); p = r["perplexity"]
o, rtn, g = p["original"], p["rtn"], p["gptq"]
gs = "per-row" if sys.argv[3] == "-1" else "g" + sys.argv[3]
print(f"| {sys.argv[2]}-bit {gs}{' act-order' if sys.argv[4] else ''} | {sys.argv[5]} | {o:.4f} | {rtn:.4f} | {g:.4f} | {100*(rtn-g)/(rtn-o):.1f}% |")
PY
  done
done
