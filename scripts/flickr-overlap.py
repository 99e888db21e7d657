#!/usr/bin/env python3
"""How much the two Flickr caption sets of the evaluation share: Flickr30K's test
photos that are also Flickr8k photos (both name a photo by its Flickr id), and how many
of their five captions are the same in both.

    python3 scripts/flickr-overlap.py [DATA]    # DATA: ../shared/data by default
"""
import collections
import json
import sys
from pathlib import Path

data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
f8k = collections.defaultdict(set)
for line in (data / "flickr8k/Flickr8k.token.txt").read_text().splitlines():
    key, _, caption = line.partition("\t")
    if "#" in key and caption:
        f8k[key.split("_")[0]].add(caption.strip().lower())
f30k = json.loads((data / "flickr30k-test/f30k_test.json").read_text())
shared = same = 0
for name, captions in f30k.items():
    photo = name.split(".")[0]
    if photo in f8k:
        shared += 1
        same += len(f8k[photo] & {c.strip().lower() for c in captions if not c.endswith(".jpg")})
print(f"Flickr30K test photos: {len(f30k)}; also in Flickr8k: {shared} ({100 * shared / len(f30k):.1f}%; "
      f"{100 * len(f8k) / 31783:.1f}% if all {len(f8k)} Flickr8k photos are among Flickr30K's 31,783)")
print(f"captions the same in both, per shared photo: {same / max(shared, 1):.2f} of 5")
