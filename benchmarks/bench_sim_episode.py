"""Simulated episode speed and success rates in the MuJoCo workcell. Prints one JSON object.

Speed: each episode = reset (new placement from the seed) + the initial observation the fine-tuning
loop needs (RGB-D + segmentation mask at ``--size``) + grasp + 40-step trajectory + the final RGB image.
The simulated duration is what the real robot would take for the same commands (the sim arm moves at
the commanded Cartesian speeds, the hand closes over the same time), so real-time factor = simulated
seconds / wall seconds; on a shared machine ``real_time_factor_cpu`` (simulated seconds / CPU seconds of
this process, all its threads, rendering included) is the load-independent figure. The first episode of each (task, object variants) compiles the scene and creates
its renderer (~0.7 s on CPU EGL); later resets reuse them. ``warmup`` runs one untimed episode first so
the steady state is reported; the cold first episode is reported separately.

Rates (``--perturb N``): success of the oracle grasp (robot/sim/oracle.py) over the timed seeds, and of N
random perturbations around it (fixed seed): μ ± 6 cm, θ ± 0.6 rad, P ± 0.3 rad, uniform per coordinate.

    python benchmarks/bench_sim_episode.py --task pick_cup --episodes 5
    python benchmarks/bench_sim_episode.py --task all --episodes 5 --perturb 20 --size 64x48
"""

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
logging.getLogger("robot.safety").setLevel(logging.ERROR)


def timed_episode(r, task, seed, split):
    from robot.sim.oracle import oracle_grasp

    t0, c0 = time.perf_counter(), time.process_time()
    r.reset(task, seed, split)
    t_reset = time.perf_counter() - t0
    frame = r.camera.read()
    t_obs = time.perf_counter() - t0 - t_reset
    out = r.run(oracle_grasp(r.world, task), initial_image=frame.rgb)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seed": seed, "cpu_s": cpu, "success": bool(out.success), "reward": out.reward, "sim_s": out.sim_s, "wall_s": total,
            "reset_s": t_reset, "observe_s": t_obs, "execute_s": out.wall_s, "error": out.error, "variants": out.variants}


def run_task(r, task, a) -> dict:
    from deft_core.grasp import GraspParams
    from robot.sim.oracle import oracle_grasp

    cold = timed_episode(r, task, a.seed + 1000, a.split)  # compiles + creates the renderer: reported apart
    rows = [timed_episode(r, task, a.seed + ep, a.split) for ep in range(a.episodes)]
    sim, wall = sum(x["sim_s"] for x in rows), sum(x["wall_s"] for x in rows)
    res = {"task": task, "split": a.split, "episodes": rows, "sim_s_total": sim, "wall_s_total": wall,
           "real_time_factor": sim / wall, "real_time_factor_cpu": sim / sum(x["cpu_s"] for x in rows),
           "cold_first_episode": {k: cold[k] for k in ("sim_s", "wall_s", "reset_s")},
           "oracle_success": f"{sum(x['success'] for x in rows)}/{len(rows)}"}
    if a.perturb:
        rng = np.random.default_rng(a.seed)
        wins = []
        for i in range(a.perturb):
            r.reset(task, a.seed + i, a.split)
            g = oracle_grasp(r.world, task).to_vector()
            g[:3] += rng.uniform(-0.06, 0.06, 3)
            g[3:6] += rng.uniform(-0.6, 0.6, 3)
            g[6:] += rng.uniform(-0.3, 0.3, 16)
            wins.append(bool(r.run(GraspParams.from_vector(g)).success))
        res["perturbed"] = {"n": a.perturb, "successes": int(sum(wins)), "success_rate": float(np.mean(wins)),
                            "ranges": "mu ±6 cm, theta ±0.6 rad, hand ±0.3 rad (uniform)"}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="pick_cup", help="a task name, a comma list, or 'all'")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--size", default="224x224")
    ap.add_argument("--split", default="train")
    ap.add_argument("--perturb", type=int, default=0, help="also measure success of N random perturbations")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    from robot.episode import SimEpisodeRunner
    from robot.tasks import TASKS

    tasks = list(TASKS) if a.task == "all" else a.task.split(",")
    r = SimEpisodeRunner(image_size=(w, h))
    results = []
    for t in tasks:  # each task's result also goes to stderr as soon as it is done (long runs)
        results.append(run_task(r, t, a))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "episodes"}, default=float), file=sys.stderr, flush=True)
    r.close()
    sim, wall = sum(x["sim_s_total"] for x in results), sum(x["wall_s_total"] for x in results)
    print(json.dumps({"image_size": [w, h], "tasks": results, "real_time_factor": sim / wall,
                      "cpu_load_1min": os.getloadavg()[0]}, default=float))


if __name__ == "__main__":
    main()
