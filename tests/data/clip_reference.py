"""Makes the reference values of the CLIP parity tests (tests/clip.rs):
tests/data/clip-reference.json, the synthetic photos in tests/data/images/, and
tests/data/clip-tiny-pytorch_model.bin.

    cargo test --release --test clip     # writes the tiny checkpoint first
    python3 tests/data/clip_reference.py  # needs torch, transformers, pillow, numpy

The checkpoint is the test's own (seeded, Hugging Face layout, in
$TMPDIR/avg-clip-parity/tiny). The reference implementation is transformers'
CLIPModel in float32 and its Pillow image processor (CLIPImageProcessorPil, which does
what OpenAI's preprocessing does: Pillow bicubic resize of the shortest side, centre
crop, mean/std), after Pillow's EXIF transpose and RGB conversion. The real photo,
images/000000000790.jpg, is an MS-COCO photo under CC BY 2.0 (images/ATTRIBUTION.md).

Pixel references are stored as the 8-bit crops (base64, row-major RGB): the script
checks that normalising them reproduces the processor's float tensor to 1e-6, so
comparing crops is comparing the tensors.
"""
import base64
import json
import os
import sys
import tempfile

import numpy as np
import torch
import transformers
from PIL import Image, ImageOps
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import CLIPConfig, CLIPModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(HERE, "images")
TEXTS = ["a photo of a dog", "Two people riding bikes near the water", "red car", "a zebra"]
PIXEL_SIZE = 64


def write_synthetic():
    """Small photos covering the decoder paths: RGBA PNG, grayscale PNG, lossless WebP
    and a JPEG whose EXIF orientation (6: rotate 90 degrees clockwise) must be applied."""
    os.makedirs(IMAGES, exist_ok=True)
    rng = np.random.default_rng(7)

    def picture(w, h, channels):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1)[..., :channels]
        noise = rng.integers(-40, 40, size=base.shape)
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    rgba = np.concatenate([picture(97, 61, 3), np.full((61, 97, 1), 180, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(IMAGES, "rgba.png"))
    Image.fromarray(picture(53, 40, 1)[..., 0], "L").save(os.path.join(IMAGES, "gray.png"))
    Image.fromarray(picture(80, 50, 3)).save(os.path.join(IMAGES, "lossless.webp"), lossless=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(picture(90, 60, 3)).save(os.path.join(IMAGES, "rotated.jpg"), quality=90, exif=exif)


def photos():
    names = sorted(os.listdir(IMAGES))
    return [(n, os.path.join(IMAGES, n)) for n in names if n != "ATTRIBUTION.md"]


def load(path):
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


def processor(size):
    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def crop_of(pixel_values, proc):
    """The 8-bit crop behind a normalised [3, H, W] tensor, checked to be exact."""
    mean = np.array(proc.image_mean, np.float32)[:, None, None]
    std = np.array(proc.image_std, np.float32)[:, None, None]
    crop = np.rint((pixel_values * std + mean) * 255).clip(0, 255).astype(np.uint8)
    again = (crop.astype(np.float32) / 255 - mean) / std
    assert np.abs(again - pixel_values).max() < 1e-5, np.abs(again - pixel_values).max()
    return crop.transpose(1, 2, 0)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "avg-clip-parity")
    tiny = os.path.join(root, "tiny")
    write_synthetic()
    out = {
        "made_by": f"tests/data/clip_reference.py with torch {torch.__version__}, "
        f"transformers {transformers.__version__}, Pillow {Image.__version__}",
        "pixel_size": PIXEL_SIZE,
        "pixels": {},
    }
    proc = processor(PIXEL_SIZE)
    for name, path in photos():
        pv = proc(images=load(path), return_tensors="np")["pixel_values"][0]
        out["pixels"][name] = base64.b64encode(crop_of(pv, proc).tobytes()).decode()

    cfg = json.load(open(os.path.join(tiny, "config.json")))
    model = CLIPModel(CLIPConfig(text_config=cfg["text_config"], vision_config=cfg["vision_config"],
                                 projection_dim=cfg["projection_dim"])).eval()
    missing, unexpected = model.load_state_dict(load_file(os.path.join(tiny, "model.safetensors")), strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    tok = Tokenizer.from_file(os.path.join(tiny, "tokenizer.json"))
    prep = json.load(open(os.path.join(tiny, "preprocessor_config.json")))
    small = processor(prep["size"]["shortest_edge"])
    with torch.no_grad():
        out["texts"] = TEXTS
        for t in TEXTS:
            ids = torch.tensor([tok.encode(t).ids])
            v = model.get_text_features(input_ids=ids)
            v = getattr(v, "pooler_output", v)
            out.setdefault("text_embeddings", []).append(torch.nn.functional.normalize(v, dim=-1)[0].tolist())
        out["images"] = [n for n, _ in photos()]
        pixels = torch.tensor(np.stack([small(images=load(p), return_tensors="np")["pixel_values"][0] for _, p in photos()]))
        v = model.get_image_features(pixel_values=pixels)
        v = getattr(v, "pooler_output", v)
        out["image_embeddings"] = torch.nn.functional.normalize(v, dim=-1).tolist()
    torch.save(model.state_dict(), os.path.join(HERE, "clip-tiny-pytorch_model.bin"))
    with open(os.path.join(HERE, "clip-reference.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
