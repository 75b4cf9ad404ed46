"""Time to generate 5 continuations of 40 tokens from the Shakespeare trigram, after loading.

Fits `models/dirichlet-trigram.toml` on ../shared/data/shakespeare/train (or reuses
`--model DIR`), loads it, then times `model.generate(prompt, n=5, max_tokens=40)` with
`stop_at_eos=False` so every continuation has the full 40 tokens. Target: under 2 s.

    python bench/generate_speed.py [--model DIR] [--repeats 3] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "shakespeare"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an already fitted model directory")
    parser.add_argument("--prompt", default="to be or not to be")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model_dir = args.model
    if model_dir is None:
        if not DATA.is_dir():
            sys.exit(f"needs {DATA} (the shared data); absent here")
        model_dir = str(Path(tempfile.mkdtemp()) / "trigram")
        subprocess.run([sys.executable, "-m", "bayeslm", "fit", "dirichlet-trigram", "--train", str(DATA / "train"),
                        "--valid", str(DATA / "valid"), "--out", model_dir, "--seed", "1", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    import bayeslm as blm

    start = time.perf_counter()
    lm = blm.load(model_dir)
    load_s = time.perf_counter() - start
    times = []
    for seed in range(args.repeats):
        start = time.perf_counter()
        conts = lm.generate(args.prompt, n=5, max_tokens=40, random_seed=seed, stop_at_eos=False)
        times.append(time.perf_counter() - start)
        assert all(len(c.tokens) == 40 for c in conts)
    best, worst = min(times), max(times)
    print(f"load {load_s:.2f} s; generate 5 x 40 tokens: best {best:.2f} s, worst {worst:.2f} s "
          f"over {args.repeats} seeds  [{'PASS' if worst < 2 else 'FAIL'}: < 2 s]")
    print("example:", conts[0].text)
    if args.out:
        Path(args.out).write_text(json.dumps({"load_seconds": load_s, "generate_seconds": times}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
