#!/bin/bash
# Starts the workbench under Xvfb on the sample data, runs the GPTQ/RTN comparison (4-bit, group
# 32, 128 x 256 calibration tokens of TinyStories, perplexity on 64 windows of TinyStories at
# seqlen 512), continues two prompts in the Generate view, and saves a screenshot of every view
# into docs/screenshots/, then the window at
# 1024 x 700 and the perplexity view in a dark palette.
#   tools/screenshots.sh [build-dir] [data-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-${GPTQW_DATA_DIR:-../shared/data}}
out=docs/screenshots
export QT_SCALE_FACTOR=${QT_SCALE_FACTOR:-1}
# A scratch settings folder, so that the user's remembered settings do not change the pictures.
export XDG_CONFIG_HOME=$(mktemp -d)
trap 'rm -rf "$XDG_CONFIG_HOME"' EXIT
mkdir -p "$XDG_CONFIG_HOME/gptq-workbench"
cat > "$XDG_CONFIG_HOME/gptq-workbench/GPTQ Workbench.conf" <<CONF
[settings]
bits=4
group=32
nsamples=128
seqlen=256
eval_seqlen=512
eval_windows=64

[window]
CONF
xvfb-run -a -s "-screen 0 1600x1000x24" "$build/app/gptq-workbench" \
  --model "$data/models/stories260K" \
  --calib "$data/text/tinystories-sample.txt" \
  --eval "$data/text/tinystories-sample.txt" \
  --run --screenshots "$out"
ls -l "$out"
