"""Makes tests/data/t5-reference-logits.json, the reference logits for the T5 parity
test (src/generator/tests.rs, logits_match_the_reference_implementation).

    cargo test --release --lib logits_match   # writes the two tiny checkpoints first
    python3 tests/data/t5_reference.py        # needs torch, transformers, safetensors

The checkpoints are the test's own (seeded, Hugging Face layout, in
$TMPDIR/avg-t5-parity/{relu-tied,gated-untied}); this script feeds them to
transformers' T5ForConditionalGeneration in float32 and stores its logits. Since
transformers 5 ties lm_head to the input embeddings whatever the config says, the
untied checkpoint's lm_head is put back by hand (as t5 v1.1 / flan-t5 checkpoints have
it), and its output is not scaled (scale_decoder_outputs follows tie_word_embeddings).
"""
import json
import os
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file
from transformers import T5Config, T5ForConditionalGeneration

INPUTS = {
    "input_ids": [[3, 4, 5, 6, 7, 1], [8, 9, 10, 1, 0, 0]],
    "attention_mask": [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]],
    "decoder_input_ids": [[0, 5, 7], [0, 12, 3]],
}


def logits(directory):
    cfg = json.load(open(os.path.join(directory, "config.json")))
    cfg.pop("model_type")
    tied = cfg["tie_word_embeddings"]
    model = T5ForConditionalGeneration(T5Config(**cfg, dropout_rate=0.0)).eval()
    weights = load_file(os.path.join(directory, "model.safetensors"))
    lm_head = weights.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected, unexpected
    assert all("embed_tokens" in k or k == "lm_head.weight" for k in missing), missing
    if not tied:
        model.lm_head.weight = torch.nn.Parameter(lm_head)
    assert model.config.scale_decoder_outputs == tied
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(INPUTS["input_ids"]),
            attention_mask=torch.tensor(INPUTS["attention_mask"]),
            decoder_input_ids=torch.tensor(INPUTS["decoder_input_ids"]),
        ).logits
    return out.flatten().tolist()


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "avg-t5-parity")
    out = {
        "made_by": f"tests/data/t5_reference.py with torch {torch.__version__}, transformers {transformers.__version__}",
        "inputs": INPUTS,
    }
    for name in ("relu-tied", "gated-untied"):
        out[name] = logits(os.path.join(root, name))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "t5-reference-logits.json")
    json.dump(out, open(path, "w"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
