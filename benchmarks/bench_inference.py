"""CPU inference latency of the paper-size affordance model at 224×224, and checkpoint load time in a
fresh process. Prints one JSON object.

    python benchmarks/bench_inference.py --threads 2 --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from deft_core.affordance import AffordanceModel, get_preset, load_affordance, save_export  # noqa: E402
from deft_core.affordance.model import count_parameters  # noqa: E402

_LOAD = """
import time, json, sys
t0 = time.perf_counter()
from deft_core.affordance import load_affordance
t1 = time.perf_counter()
p = load_affordance(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--text-encoder", default="hash:512", help="text backend for predict() (paper: clip, 512-d)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    p = get_preset("paper")
    p.model.text_encoder, p.model.text_dim = a.text_encoder, int(a.text_encoder.split(":")[1]) if ":" in a.text_encoder else 384
    torch.manual_seed(0)
    model = AffordanceModel(p.model).eval()
    with tempfile.TemporaryDirectory() as d:
        save_export(d, model)
        pred = load_affordance(d)
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        box = (200, 120, 440, 360)
        for _ in range(3):
            pred.predict(frame, box, "pick up the cup")
        times = []
        for i in range(a.runs):
            t = time.perf_counter()
            pred.predict(frame, box, "pick up the cup")
            times.append(time.perf_counter() - t)
        with torch.no_grad():
            x, e = torch.from_numpy(frame[None, :224, :224].copy()), torch.randn(1, p.model.text_dim)
            fwd = []
            for _ in range(a.runs):
                t = time.perf_counter()
                model(x, e)
                fwd.append(time.perf_counter() - t)
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
        loads = [json.loads(subprocess.run([sys.executable, "-c", _LOAD, d], capture_output=True, text=True, env=env,
                                           check=True, cwd=str(Path(__file__).resolve().parents[1])).stdout.strip().splitlines()[-1])
                 for _ in range(3)]
        size_mb = (Path(d) / "model.safetensors").stat().st_size / 2**20
    print(json.dumps({
        "benchmark": "affordance_inference", "device": "cpu", "threads": a.threads, "image_size": 224,
        "parameters": count_parameters(model), "checkpoint_mb": round(size_mb, 1), "text_encoder": a.text_encoder,
        "predict_ms_median": 1000 * float(np.median(times)), "predict_ms_p90": 1000 * float(np.percentile(times, 90)),
        "forward_ms_median": 1000 * float(np.median(fwd)),
        "fresh_process_import_s_median": float(np.median([l["import_s"] for l in loads])),
        "fresh_process_load_s_median": float(np.median([l["load_s"] for l in loads])), "runs": a.runs}))


if __name__ == "__main__":
    main()
