"""Simulated episode speed: one grasp + 40-step trajectory in the MuJoCo workcell, with the images the
fine-tuning loop needs (initial RGB-D + mask, final RGB at the given size). Prints one JSON object.

The simulated duration is the time the real robot would take for the same commands (the sim arm moves
at the commanded Cartesian speeds, the hand closes over the same time), so real-time factor =
simulated seconds / wall seconds. Optional: success rates of random perturbations around the oracle
grasp (``--perturb N``: μ ± σ_μ·U(−1,1)·3, θ ± 0.6 rad, P ± 0.3 rad, fixed seed).

    python benchmarks/bench_sim_episode.py --task pick_cup --episodes 3
    python benchmarks/bench_sim_episode.py --task pick_cup --perturb 20
"""

import argparse
import json
import logging
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
logging.getLogger("robot.safety").setLevel(logging.ERROR)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="pick_cup")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--size", default="224x224")
    ap.add_argument("--perturb", type=int, default=0, help="also measure success of N random perturbations")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    from deft_core.grasp import GraspParams
    from robot.episode import SimEpisodeRunner
    from robot.sim.oracle import oracle_grasp

    r = SimEpisodeRunner(image_size=(w, h))
    rows = []
    for ep in range(a.episodes):
        t0 = time.perf_counter()
        r.reset(a.task, a.seed + ep)
        t_reset = time.perf_counter() - t0
        frame = r.camera.read()
        t_obs = time.perf_counter() - t0 - t_reset
        out = r.run(oracle_grasp(r.world, a.task), initial_image=frame.rgb)
        total = time.perf_counter() - t0
        rows.append({"seed": a.seed + ep, "success": out.success, "sim_s": out.sim_s, "wall_s": total,
                     "reset_s": t_reset, "observe_s": t_obs, "execute_s": out.wall_s, "error": out.error})
    sim = sum(x["sim_s"] for x in rows)
    wall = sum(x["wall_s"] for x in rows)
    result = {"task": a.task, "image_size": [w, h], "episodes": rows, "sim_s_total": sim, "wall_s_total": wall,
              "real_time_factor": sim / wall, "oracle_success_rate": float(np.mean([x["success"] for x in rows])),
              "cpu_load_1min": os.getloadavg()[0]}
    if a.perturb:
        rng = np.random.default_rng(a.seed)
        wins = []
        for i in range(a.perturb):
            r.reset(a.task, a.seed + i)
            g = oracle_grasp(r.world, a.task).to_vector()
            g[:3] += rng.uniform(-0.06, 0.06, 3)
            g[3:6] += rng.uniform(-0.6, 0.6, 3)
            g[6:] += rng.uniform(-0.3, 0.3, 16)
            wins.append(r.run(GraspParams.from_vector(g)).success)
        result["perturbed"] = {"n": a.perturb, "success_rate": float(np.mean(wins)),
                               "ranges": "mu ±6 cm, theta ±0.6 rad, hand ±0.3 rad (uniform)"}
    r.close()
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
