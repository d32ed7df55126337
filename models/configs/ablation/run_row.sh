#!/bin/bash
# one ablation row: train (300 steps, 1 thread), export, evaluate on dev samples (keeps predictions)
cd "$(dirname "$0")/../../.." && . .venv/bin/activate
v=$1; d=runs/abl-llm/$v; L=runs/abl-llm/log.txt
[ -f models/configs/ablation/$v.json ] || { echo "usage: $0 ROW (one of: $(cd models/configs/ablation && ls *.json | sed "s/.json//" | tr "\n" " "))" >&2; exit 2; }
mkdir -p $d
if [ ! -s $d/artifact/adapter.safetensors ]; then
  biotag train llm --config models/configs/ablation/$v.json --resume >> $d/train.log 2>&1 || { echo "$(date +%T) train $v FAILED" >> $L; exit 1; }
fi
echo "$(date +%T) trained $v" >> $L
if [ ! -s $d/bundle/manifest.json ]; then
  biotag export bundle --adapter $d/artifact --out $d/bundle --quant q4_k_m --marker-bias 2 --name abl-$v --version 0.0.2 --quiet >> $d/export.log 2>&1 || { echo "$(date +%T) export $v FAILED" >> $L; exit 1; }
fi
for cs in ncbi-disease:150 genia:100 bc5cdr:100; do
  c=${cs%%:*}; n=${cs##*:}
  [ -s $d/dev-$c.json ] && continue
  biotag eval-model --bundle $d/bundle --corpus $c --split dev --sample $n --seed 1 --threads 1 --json --pred-dir $d/pred \
    > $d/dev-$c.json.tmp 2>>$d/eval.log && mv $d/dev-$c.json.tmp $d/dev-$c.json
  echo "$(date +%T) $v dev $c done" >> $L
done
echo "$(date +%T) $v ALLDONE" >> $L
