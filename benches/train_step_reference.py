"""The reference for benches/train_step.rs: the same training step in Hugging Face
transformers' T5ForConditionalGeneration (t5-small configuration, random weights,
vocabulary extended by the voken tokens, labels of M+1 = 5 tokens, torch AdamW with
gradient clipping), timed per step on the CPU."""
import argparse
import statistics
import time

import torch
from transformers import T5Config, T5ForConditionalGeneration

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--text-tokens", type=int, default=24)
p.add_argument("--vokens", type=int, default=2048)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=8)
a = p.parse_args()

torch.manual_seed(0)
torch.set_num_threads(a.threads)
config = T5Config(vocab_size=32128 + a.vokens, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                  feed_forward_proj="relu", dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
model = T5ForConditionalGeneration(config).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
ids = torch.randint(3, 32000, (a.batch, a.text_tokens))
labels = torch.randint(32128, 32128 + a.vokens, (a.batch, 5))
times = []
for _ in range(a.steps + 1):
    t = time.perf_counter()
    loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append((time.perf_counter() - t) * 1e3)
print(f"reference (PyTorch {torch.__version__}): {statistics.median(times[1:]):.0f} ms per step (median of {a.steps})")
