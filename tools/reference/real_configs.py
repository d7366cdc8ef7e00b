#!/usr/bin/python3
"""Reference perplexities of seeded synthetic models built from the real config.json files in
../shared/data/configs (the numbers tests/tst_real_configs.cpp pins).

For each case: the config (as published, or with the edit listed below) is cut to 1 block and
written with seeded bf16 weights by `synth_model --config FILE --layers 1` (the family's real
tokenizer is copied: Llama 3, Qwen; else the sample model's 512-token one); the evaluation text
is the first 16384 bytes of wikitext-2-raw-test.txt cut back to the last newline, tokenized by
`gptqw tokenize --json`; the perplexity over 2 windows of 128 tokens comes from
llama_reference.py (float64, written from the published model definitions).

  /usr/bin/python3 tools/reference/real_configs.py [--build build] [--data ../shared/data] [--only NAME]
"""
import argparse, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402
import torch  # noqa: E402

# name, config file, edits. Vocabulary cuts (512: the sample tokenizer's size) keep the two
# 7-8B-wide models' embedding and head from dominating the test's time; see README.md.
CASES = [
    ("llama-3.2-1b", "meta-llama__Llama-3.2-1B.config.json", {}),
    ("llama-3.1-8b-vocab512", "meta-llama__Llama-3.1-8B.config.json", {"vocab_size": 512}),
    ("qwen3-0.6b", "Qwen__Qwen3-0.6B.config.json", {}),
    ("qwen2.5-0.5b", "Qwen__Qwen2.5-0.5B.config.json", {}),
    ("mistral-7b-v0.3-vocab512", "mistralai__Mistral-7B-Instruct-v0.3.config.json", {"vocab_size": 512}),
    ("smollm2-135m", "HuggingFaceTB__SmolLM2-135M.config.json", {}),
    ("tinyllama-1.1b", "TinyLlama__TinyLlama-1.1B-Chat-v1.0.config.json", {}),
    ("smollm2-linear", "HuggingFaceTB__SmolLM2-135M.config.json",
     {"rope_scaling": {"type": "linear", "factor": 4.0}}),
    ("smollm2-dynamic", "HuggingFaceTB__SmolLM2-135M.config.json",
     {"rope_scaling": {"type": "dynamic", "factor": 4.0}, "max_position_embeddings": 64}),
    ("smollm2-yarn", "HuggingFaceTB__SmolLM2-135M.config.json",
     {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}, "max_position_embeddings": 64}),
]
SEQLEN, WINDOWS, TEXT_BYTES = 128, 2, 16384


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--data", default=os.environ.get("GPTQW_DATA_DIR", "../shared/data"))
    ap.add_argument("--only")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix="gptqw-real-configs-")
    raw = open(os.path.join(a.data, "text/wikitext-2-raw-test.txt"), "rb").read(TEXT_BYTES)
    text = os.path.join(tmp, "text.txt")
    open(text, "wb").write(raw[:raw.rindex(b"\n") + 1])
    for name, cfg_file, edits in CASES:
        if a.only and a.only != name:
            continue
        cfg = json.load(open(os.path.join(a.data, "configs", cfg_file)))
        cfg.update(edits)
        cfg_path = os.path.join(tmp, name + ".config.json")
        json.dump(cfg, open(cfg_path, "w"), indent=2)
        model = os.path.join(tmp, name)
        subprocess.run([os.path.join(a.build, "tools/synth_model"), "--out", model, "--config", cfg_path,
                        "--layers", "1"], check=True, stdout=subprocess.DEVNULL)
        ids = json.loads(subprocess.run([os.path.join(a.build, "app/gptqw"), "tokenize", "--tokenizer", model,
                                         "--text", text, "--json"], check=True, capture_output=True).stdout)["ids"]
        m = ref.load_model(model)
        with torch.inference_mode():
            r = ref.perplexity(m, ids, SEQLEN, WINDOWS)
        print(json.dumps({"case": name, "ppl": r["ppl"], "nll_mean": r["nll_mean"], "tokens": r["tokens"]}),
              flush=True)
        del m
        subprocess.run(["rm", "-rf", model])


if __name__ == "__main__":
    main()
