#!/usr/bin/env bash
# Regenerates the fuzzers' seed corpora in tests/fuzz/corpus/ (committed; CI only reads
# them). Needs a release build (build/postformer), the fuzz build (build-asan/fuzz_*) and
# Debian's `sentencepiece` package for spm_train. Usage: bash tests/fuzz/make_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/build/postformer
C=$PWD/tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rm -rf "$C" && mkdir -p "$C"/{safetensors,config,bpe_tokenizer,sp_tokenizer,state_file,trainer_state,token_file}
for i in $(seq 1 200); do echo "Seed text line $i: the quick brown fox."; done > "$T/text.txt"
for arch in transformer mamba mamba2 retnet; do
  "$B" train --arch $arch --data "$T/text.txt" --out "$T/$arch" --d-model 8 --layers 1 --heads 2 \
    --d-state 4 --headdim 8 --ffn 16 --seq 8 --batch 2 --context 16 --steps 1 --eval-every 0 \
    --eval-batches 1 --threads 1 > /dev/null
  ck="$T/$arch/$(cat "$T/$arch/latest")"
  cp "$ck/config.json" "$C/config/$arch.json"
  cp "$ck/trainer_state.json" "$C/trainer_state/$arch.json"
  [ $arch = transformer ] && cp "$ck/model.safetensors" "$C/safetensors/transformer.safetensors"
done
# A state-spaces Mamba config and a flash-linear-attention RetNet config (published layouts).
echo '{"d_model": 8, "n_layer": 1, "vocab_size": 50, "ssm_cfg": {"layer": "Mamba2", "d_state": 4, "headdim": 8}, "pad_vocab_size_multiple": 8}' > "$C/config/state_spaces_mamba2.json"
echo '{"model_type": "retnet", "hidden_size": 8, "num_hidden_layers": 1, "num_heads": 2, "vocab_size": 40}' > "$C/config/fla_retnet.json"
# Hybrids: a pattern config and a state-spaces config with attention layers and MLPs.
echo '{"model_type": "postformer_hybrid", "pattern": "MASR", "hidden_size": 8, "vocab_size": 40, "intermediate_size": 8, "num_attention_heads": 2, "mamba": {"d_state": 4}, "mamba2": {"d_state": 4, "headdim": 8}, "retention": {"num_heads": 2, "decay": [0.9, 0.99]}}' > "$C/config/hybrid.json"
echo '{"d_model": 8, "n_layer": 2, "vocab_size": 50, "d_intermediate": 8, "ssm_cfg": {"layer": "Mamba2", "d_state": 4, "headdim": 8}, "attn_layer_idx": [1], "attn_cfg": {"causal": true, "num_heads": 2, "head_dim": 4, "d_conv": 2, "rotary_emb_dim": 2, "qkv_proj_bias": false, "out_proj_bias": false}}' > "$C/config/state_spaces_hybrid.json"
# A hand-made F16 file: 8-byte length, the 57-byte header, two halves (1.0, 2.0).
printf '\x39\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}   ' > "$C/safetensors/f16.safetensors"
printf '\x00\x3c\x00\x40' >> "$C/safetensors/f16.safetensors"
cp tests/data/tiny_bpe/tokenizer.json "$C/bpe_tokenizer/tiny_bpe.json"
spm_train --input="$T/text.txt" --model_prefix="$T/sp" --vocab_size=320 --hard_vocab_limit=false --model_type=bpe --normalization_rule_name=identity \
  --byte_fallback=true --character_coverage=1.0 --minloglevel=2 > /dev/null 2>&1
cp "$T/sp.model" "$C/sp_tokenizer/bpe_fallback.model"
PF_FUZZ_WRITE_SEEDS="$C/state_file" build-asan/fuzz_state_file -runs=0 > /dev/null 2>&1
printf '72 101 108 108 111\n' > "$C/token_file/ids.txt"
printf 'caf\xc3\xa9 \xe2\x82\xac 42\n' > "$C/token_file/utf8.txt"
du -sh "$C"/*
