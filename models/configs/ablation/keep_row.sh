#!/bin/bash
# keep one finished ablation row with the model's results (git): its training config, its dev predictions
# (so later rows can be compared with it by a paired bootstrap) and its eval JSON. runs/ is not kept.
cd "$(dirname "$0")/../../.." || exit 1
v=$1; d=runs/abl-llm/$v; k=docs/results/biotag-gemma3-s/ablation
[ -s $d/artifact/config.json ] && ls $d/pred/*.dev.jsonl >/dev/null 2>&1 || { echo "usage: $0 ROW (a row run_row.sh finished: $d)" >&2; exit 2; }
mkdir -p $k/$v/artifact $k/$v/pred
cp $d/artifact/config.json $k/$v/artifact/
cp $d/pred/*.dev.jsonl $k/$v/pred/
for f in $d/dev-*.json; do cp "$f" "$k/$v-$(basename "$f")"; done
echo "kept $v in $k"
