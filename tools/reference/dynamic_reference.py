#!/usr/bin/env python3
"""How GPTQModel and vLLM resolve the "dynamic" rules of a GPTQ quantize_config.json.

For each block and linear module of a Llama-family model, prints the override each loader
resolves: GPTQModel for the unfused module names ("model.layers.3.self_attn.q_proj"), which it
looks up, and vLLM for the fused names it builds ("model.layers.3.self_attn.qkv_proj",
"model.layers.3.mlp.gate_up_proj") as well as the unfused o_proj / down_proj. Used by hand to
check what core/io/gptq_settings.cpp writes (tests/tst_dynamic.cpp names the case):

    python3 tools/reference/dynamic_reference.py quantize_config.json --layers 16

Both resolutions restate the loaders' logic (standard library only; Python's `re` stands in
for GPTQModel's `pcre` module and vLLM's `regex`, identical on such patterns):
  - GPTQModel, gptqmodel/quantization/config.py: QuantizeConfig.__post_init__ moves every "-:"
    key before the others; dynamic_get / _resolve_dynamic_override return the first rule whose
    pattern (prefix "-:" / "+:" removed) matches the start of the name: False for "-:", the
    override dict otherwise, None when nothing matches.
  - vLLM, vllm/model_executor/layers/quantization/utils/gptq_utils.py: get_dynamic_override
    walks the dict in file order with re.match, "-:" gives False, "+:" or no prefix the
    override dict; override_config then takes "bits", "group_size", "desc_act" (and "sym" for
    gptq_marlin) from it, the global value for a missing key.
Prints one line per name: "<name>  gptqmodel=<...>  vllm=<...>", then "DISAGREE" lines, if
any, where the two loaders resolve an unfused name and its fused layer differently.
"""
import argparse
import json
import re

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
FUSED = {"self_attn.q_proj": "self_attn.qkv_proj", "self_attn.k_proj": "self_attn.qkv_proj",
         "self_attn.v_proj": "self_attn.qkv_proj", "mlp.gate_proj": "mlp.gate_up_proj",
         "mlp.up_proj": "mlp.gate_up_proj"}


def gptqmodel_resolve(dynamic, name):
    # __post_init__: {**{k: v for k in dynamic if k.startswith('-')}, **{the others}}
    ordered = [k for k in dynamic if k.startswith("-")] + [k for k in dynamic if not k.startswith("-")]
    for key in ordered:
        raw = key[2:] if key.startswith(("-:", "+:")) else key
        if re.match(raw, name):
            return False if key.startswith("-:") else dict(dynamic[key])
    return None


def vllm_resolve(dynamic, name):
    # get_dynamic_override(config, layer_name, key=None)
    for pattern, pattern_dict in dynamic.items():
        if pattern.startswith("-:"):
            if re.match(pattern.removeprefix("-:"), name):
                return False
        elif re.match(pattern.removeprefix("+:"), name):
            return pattern_dict
    return None


def effective(cfg, override):
    """(bits, group_size) a loader uses, or "fp16"."""
    if override is False:
        return "fp16"
    o = override or {}
    return (o.get("bits", cfg["bits"]), o.get("group_size", cfg["group_size"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="quantize_config.json (or config.json)")
    ap.add_argument("--layers", type=int, required=True)
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)  # a dict keeps the file's key order, as the loaders read it
    cfg = cfg.get("quantization_config", cfg)
    dynamic = cfg.get("dynamic") or {}
    skipped = set(cfg.get("modules_not_quantized") or [])
    disagree = []
    for b in range(args.layers):
        for lin in LINEARS:
            name = f"model.layers.{b}.{lin}"
            fused = f"model.layers.{b}.{FUSED.get(lin, lin)}"
            g = effective(cfg, gptqmodel_resolve(dynamic, name))
            v = effective(cfg, vllm_resolve(dynamic, fused))
            # vLLM also leaves a layer unquantized that modules_in_block_to_quantize leaves out
            # (is_layer_gptq_quantized); our files list the same kinds in modules_not_quantized.
            if lin in skipped:
                v = "fp16"
            print(f"{name}  gptqmodel={g}  vllm[{fused}]={v}")
            if g != v:
                disagree.append(f"DISAGREE {name}: gptqmodel={g} vllm={v}")
    for line in disagree:
        print(line)
    print(f"{len(disagree)} disagreements")


if __name__ == "__main__":
    main()
