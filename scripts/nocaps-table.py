#!/usr/bin/env python3
"""The nocaps table of docs/results.md from avg-eval's JSON, so that no figure is copied
by hand. Each argument is COLUMN=FILE[+FILE...]: a column's rows are looked up in its
files in order (a --reuse run's rows beside its training run's).

    scripts/nocaps-table.py "in-domain, test=docs/results/nocaps-test-cf.json" ...
"""
import json,sys
def load(p): return json.load(open(p))
def row(ds, method):
    for d in ds:
        for r in d['rows']:
            if r['method']==method: return r
    raise KeyError(method)
ROWS=[
 ("zero-shot dense scan (`DENSE`)","dense baseline (exact cosine, MiniLM)"),
 ("dense + words (the best of the photo's and its texts' cosines)","dense + words (the best of the image's and its 2 texts' cosines)"),
 ("quantiser's codes (`QUANTIZER`)","tokenizer reference (no generator), dense weight 100, at least 1000 candidates"),
 ("generator's codes, fused (`FUSED`)","libavg fused beam 20, dense weight 100, at least 1000 candidates"),
 ("fused with the quantiser's prior 30","libavg fused beam 20, dense weight 100, at least 1000 candidates, quantizer prior 30"),
 ("plain beam 20 (`BEAM`, the paper's method)","libavg beam 20"),
 ("beam 20 + rerank (`RERANK`)","libavg beam 20 + rerank"),
 ("codes alone: the quantiser's","tokenizer reference (no generator), dense weight 0, at least 1000 candidates"),
 ("codes alone: the generator's","libavg fused beam 20, dense weight 0, at least 1000 candidates"),
 ("codes alone: the generator's with prior 1000","libavg fused beam 20, dense weight 0, at least 1000 candidates, quantizer prior 1000"),
]
def fmt(r):
    s=f"{r['r1']:.1f} / {r['r5']:.1f} / {r['r10']:.1f}"
    d=r.get('minus_dense')
    if d: s+=f" | {d['r1']:+.1f} [{d['r1_95'][0]:+.1f}, {d['r1_95'][1]:+.1f}]"
    else: s+=" | "
    return s
compact = "--compact" in sys.argv
cols=[a for a in sys.argv[1:] if a not in ("--compact", "--words")]
if compact:
    # The README's: the routes a host can pick, R@1 / R@10 and R@1 against dense.
    ROWS=[r for r in ROWS if not r[0].startswith("codes alone")]
    def fmt(r):
        d=r.get('minus_dense')
        delta=f"{d['r1']:+.1f} [{d['r1_95'][0]:+.1f}, {d['r1_95'][1]:+.1f}]" if d else ""
        return f"{r['r1']:.1f} / {r['r10']:.1f} | {delta}"
words = "--words" in sys.argv
if words:
    # The words track: each row also against the dense scan given the same words.
    ROWS=[r for r in ROWS if not r[0].startswith("codes alone: the generator's with")]
    def fmt(r):
        out=f"{r['r1']:.1f} / {r['r5']:.1f} / {r['r10']:.1f}"
        for key in ("minus_dense", "minus_dense_words"):
            d=r.get(key)
            out+=f" | {d['r1']:+.1f} [{d['r1_95'][0]:+.1f}, {d['r1_95'][1]:+.1f}]" if d else " | "
        return out
heads=[c.split('=')[0] for c in cols]
files=[[load(f) for f in c.split('=')[1].split('+')] for c in cols]
cells="R@1 / R@10" if compact else "R@1 / R@5 / R@10"
extra=" | R@1 − dense + words [95%]" if words else ""
print("| route | "+" | ".join(f"{h}: {cells} | R@1 − dense [95%]{extra}" for h in heads)+" |")
print("|---|"+("---|---|---|" if words else "---|---|")*len(cols))
for name,method in ROWS:
    cells=[]
    for d in files:
        try: cells.append(fmt(row(d,method)))
        except KeyError: cells.append(None)
    if all(c is None for c in cells):
        continue  # a row none of the runs has (dense + words outside the words track)
    empty = "— | — | —" if words else "— | —"
    print(f"| {name} | "+" | ".join(c or empty for c in cells)+" |")
