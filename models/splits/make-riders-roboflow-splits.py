#!/usr/bin/env python3
"""Writes the fixed train / val / test split of ../shared/footage/riders-roboflow (stdlib only, deterministic).

The published set mixes frames of a few videos (names `036_100_jpg.rf.<hash>.jpg`: video 036, frame 100;
`098-Rhythm12_...`; `Screenshot-2023-08-02-at-12-27-55-PM...`) with single photos. Neighbouring frames of
one video are near-duplicates, so the split is by *unit*, not by image: a unit is a block of 10 frame
numbers of one video (036 frames 100-109 ...), a screenshot minute, or a single photo. Within each video
(group) the units are ordered by the SHA-256 of their key; the first 20 % of them (at least one) are
`test`, the next 10 % `val`, the rest `train`. So every video, the Delhi enforcement camera (036)
included, is in every split, and no unit straddles two splits. The Roboflow `train/` / `valid/` folders are
ignored (they are a random split by image).

Output: riders-roboflow-{train,val,test}.txt beside this script, one path per line relative to the data
set's root (`train/images/036_100_jpg.rf....jpg`), sorted. Rerunning it must leave them unchanged (git diff).
Training and threshold tuning use train / val only; `test` is for reported figures.

Usage: models/splits/make-riders-roboflow-splits.py [--root ../shared/footage/riders-roboflow]
"""
import argparse
import hashlib
import math
import os
import re
import sys

TEST, VAL = 0.20, 0.10


def unit_of(name):
    """(group, unit key) of an image file name."""
    stem = name.split(".rf.")[0]
    m = re.match(r"^(\d{3})_(\d+)", stem)
    if m:
        return m.group(1), f"{m.group(1)}/{int(m.group(2)) // 10}"
    m = re.match(r"^(098-Rhythm)(\d+)", stem)
    if m:
        return m.group(1), f"{m.group(1)}/{int(m.group(2)) // 10}"
    m = re.match(r"^Screenshot-(\d{4}-\d\d-\d\d)-at-(\d+)-(\d+)-", stem)
    if m:
        return "screenshot", f"screenshot/{m.group(1)}/{m.group(2)}-{m.group(3)}"
    return "other", f"other/{stem}"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join(here, "..", "..", "..", "shared", "footage", "riders-roboflow"))
    ap.add_argument("--out", default=here)
    args = ap.parse_args()
    images = []
    for folder in ("train", "valid"):
        d = os.path.join(args.root, folder, "images")
        if not os.path.isdir(d):
            sys.exit(f"{d}: not found; pass --root <riders-roboflow folder>")
        images += [f"{folder}/images/{n}" for n in sorted(os.listdir(d))]
    groups = {}
    for path in images:
        g, u = unit_of(os.path.basename(path))
        groups.setdefault(g, {}).setdefault(u, []).append(path)
    split = {"train": [], "val": [], "test": []}
    for g in sorted(groups):
        units = sorted(groups[g], key=lambda u: hashlib.sha256(u.encode()).hexdigest())
        n = len(units)
        n_test = max(1, round(n * TEST))
        n_val = max(1, round(n * VAL)) if n > 2 else 0
        for i, u in enumerate(units):
            s = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            split[s] += groups[g][u]
    for s, paths in split.items():
        with open(os.path.join(args.out, f"riders-roboflow-{s}.txt"), "w") as f:
            f.write("".join(p + "\n" for p in sorted(paths)))
        delhi = sum(os.path.basename(p).startswith("036_") for p in paths)
        print(f"{s}: {len(paths)} images ({delhi} from the Delhi enforcement camera 036)")


if __name__ == "__main__":
    main()
