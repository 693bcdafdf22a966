"""Paper-style reports from the runs on disk (:mod:`robot.runs`): Table 2 (task × method × train/test
success), Table 3 (policy ablations; reward ablations where runs exist) as markdown + JSON, and Figure
6-style improvement curves (reward vs CEM episode, per task, DEFT vs real-world-only) as PNG.

Only what exists is reported; a missing evaluation is a cell marked ``missing`` (markdown) / ``null``
(JSON), never a guess. Every number comes from an evaluation JSON (:func:`robot.evaluation.load_eval`)
or an episode log, and the JSON names the file it came from.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

from robot.evaluation import evaluated_an_older_policy, load_eval, partial_progress
from robot.runs import CHECKPOINT_DIGEST, MAIN_REWARDS, TABLE4_SIGMA, RunDir, RunMeta, discover_runs, write_json

SPLITS = ("train", "test")
TABLE2_METHODS = ("affordance", "real-world-only", "deft")
TABLE2_LABELS = {"affordance": "Affordance model only", "real-world-only": "Real-world only", "deft": "DEFT"}
ABLATION_KINDS = ("deft", "mlp", "transformer", "direct", "mean")
MISSING = "missing"


def _cell(run: RunDir | None, policy: str, split: str) -> dict | None:
    if run is None:
        return None
    path = run.eval_path(policy, split)
    if not path.is_file():
        return None
    e = load_eval(path)
    cell = {"successes": int(e["successes"]), "trials": int(e["trials"]), "success_rate": float(e["success_rate"]),
            "mean_reward": float(e["mean_reward"]), "source": str(path)}
    if evaluated_an_older_policy(e, path):
        cell["stale"] = True  # the policy was distilled again after this evaluation
    per = e.get("per_trial") or []
    if per and all("seed" in t and "success" in t for t in per):
        cell["trial_outcomes"] = [(int(t["seed"]), bool(t["success"])) for t in per]
    return cell


def _p_greater(a: dict, b: dict) -> tuple[float, str]:
    """One-sided p-value that cell ``a``'s success rate is above cell ``b``'s, and the test used. When both
    evaluations ran the same trial seeds (``deft-robot eval`` pairs them: the same scenes for every
    policy), the exact McNemar test on the discordant trials; otherwise Fisher's exact test."""
    from scipy.stats import binomtest, fisher_exact

    pa, pb = a.get("trial_outcomes"), b.get("trial_outcomes")
    if pa and pb and [s for s, _ in pa] == [s for s, _ in pb]:
        wins = sum(x and not y for (_, x), (_, y) in zip(pa, pb))
        losses = sum(y and not x for (_, x), (_, y) in zip(pa, pb))
        if wins + losses == 0:
            return 1.0, "mcnemar"
        return float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue), "mcnemar"
    table = [[a["successes"], a["trials"] - a["successes"]], [b["successes"], b["trials"] - b["successes"]]]
    return float(fisher_exact(table, alternative="greater")[1]), "fisher"


def _better_baseline(row: dict, split: str) -> str:
    """The baseline DEFT is judged against on ``split``: the one with the higher success rate
    (``affordance`` on a tie)."""
    return max(("affordance", "real-world-only"), key=lambda m: row[f"{m}_{split}"]["success_rate"])


def pattern(row: dict, alpha: float = 0.05) -> dict:
    """Does Table 2's pattern hold on this row: DEFT's success rate strictly above both baselines',
    on train and on test objects? Per split: ``above`` (bool, None if a cell is missing), ``p`` — the
    larger of the one-sided p-values of DEFT against each baseline (how likely the gap is from chance with
    this many trials; :func:`_p_greater`), so p < ``alpha`` means significant against both — and ``test``
    (``mcnemar`` for paired trials, else ``fisher``). The better baseline by success rate usually gives the
    larger p, but not always: a paired test counts the scenes won and lost, not the totals.
    ``holds``: above on both splits; ``significant``: also p < ``alpha`` on both."""
    out = {}
    for split in SPLITS:
        d, a, r = (row.get(f"{m}_{split}") for m in ("deft", "affordance", "real-world-only"))
        if d is None or a is None or r is None:
            out[split] = {"above": None, "p": None, "test": None}
            continue
        best = row[f"{_better_baseline(row, split)}_{split}"]
        p, test = max(_p_greater(d, a), _p_greater(d, r))  # significant against both: the larger p decides
        out[split] = {"above": d["success_rate"] > best["success_rate"], "p": p, "test": test}
    holds = all(out[s]["above"] for s in SPLITS)
    out["holds"] = holds
    out["significant"] = holds and all(out[s]["p"] < alpha for s in SPLITS)
    return out


def fmt_p(p: float) -> str:
    """A p-value for a table: two significant digits, never a misleading 0.00 (``< 0.001``)."""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def _fmt_pattern(p: dict, trial_p: bool = True) -> str:
    """The verdict cell; ``trial_p=False`` (the pooled table) leaves out the trial-level p-values, which
    treat the scenes repeated across runs as independent: the pooled table gives the across-runs test."""
    if any(p[s]["above"] is None for s in SPLITS):
        return MISSING
    if p["holds"]:
        if not trial_p:
            return "yes"
        return "yes" + (" (p < 0.05 on both)" if p["significant"] else f" (p = {fmt_p(p['train']['p'])}, {fmt_p(p['test']['p'])})")
    return "no (not on " + ", ".join(s for s in SPLITS if not p[s]["above"]) + ")"


def _read_log(run: RunDir, cache: dict) -> tuple[dict, list] | None:
    """``(run_meta, 'ok' episode records)`` of a run's fine-tuning log, or None without a log or episodes;
    read once per report (``cache``: run path → result), since the curves, the Table 2 row and every DEFT
    run sharing a real-world-only baseline all need the same log."""
    key = str(run.path)
    if key not in cache:
        cache[key] = None
        if (run.finetune_dir / "run.json").is_file():
            from deft_core.finetune.episode_log import open_run

            run_meta, records = open_run(run.finetune_dir)
            ok = [r for r in records if r.status == "ok"]
            cache[key] = (run_meta, ok) if ok else None
    return cache[key]


def finetune_stats(run: RunDir | None, cache: dict | None = None) -> dict | None:
    """What a run's fine-tuning log says about Algorithm 1 (None without a log): ``episodes`` ('ok'
    ones), ``successes``, ``controller_errors`` (episodes that ended in an arm/controller error: a
    collision, an unreachable pose), mean reward of the first and of the last ten episodes, ``elites``
    and ``successful_elites`` — how many episodes the DEFT policy is distilled from and how many of them
    succeeded: the episodes its checkpoint names, or, before distillation, the top E by reward as
    Algorithm 1 ranks them (with an operator's scores a success need not outrank every failure).
    ``cache``: :func:`collect`'s log cache (run path → parsed log), so no log is read twice."""
    log = None if run is None else _read_log(run, {} if cache is None else cache)
    if log is None:
        return None
    import json

    from deft_core.finetune.cem import elite_indices
    from deft_core.finetune.episode_log import successes_recorded

    run_meta, ok = log
    rewards = [float(r.reward) for r in ok]
    policy_config = run.policy_dir("deft") / "config.json"
    if policy_config.is_file():
        used = json.loads(policy_config.read_text())["training_data"]["episodes"]
    else:
        used = [ok[i].episode for i in elite_indices(rewards, int(run_meta["cem"]["num_elites"]))]
    succeeded = {r.episode for r in ok if r.success is True}
    judged = successes_recorded(ok)
    by_episode = {r.episode: float(r.reward) for r in ok}
    return {"run": str(run.path), "episodes": len(ok), "successes": len(succeeded) if judged else None,
            "controller_errors": sum(bool((r.info or {}).get("error")) for r in ok),
            "mean_reward_first10": sum(rewards[:10]) / len(rewards[:10]),
            "mean_reward_last10": sum(rewards[-10:]) / len(rewards[-10:]),
            "elites": len(used), "successful_elites": sum(e in succeeded for e in used) if judged else None,
            "elite_mean_reward": sum(by_episode.get(e, 0.0) for e in used) / max(1, len(used))}


def why_not(row: dict) -> list[str]:
    """Plain reasons, read off the cells and the fine-tuning log, why Table 2's pattern fails on ``row``
    (empty when it holds or a cell is missing): per split, whether DEFT ties or trails the better
    baseline or that baseline is already perfect; and whether fine-tuning had successes to learn from."""
    p = row["pattern"]
    if p["holds"] or any(p[s]["above"] is None for s in SPLITS):
        return []
    out = []
    for split in SPLITS:
        if p[split]["above"]:
            continue
        d = row[f"deft_{split}"]
        method = _better_baseline(row, split)
        b = row[f"{method}_{split}"]
        label, n = TABLE2_LABELS[method], b["trials"]
        if b["successes"] == n:
            out.append(f"{split}: {label} is already {n}/{n}, nothing to be strictly above")
        elif b["successes"] == 0:
            out.append(f"{split}: nothing succeeds (0/{n} for every method)")
        elif d["success_rate"] == b["success_rate"]:
            out.append(f"{split}: DEFT ties {label} at {d['successes']}/{d['trials']}")
        else:
            out.append(f"{split}: DEFT {d['successes']}/{d['trials']} below {label} {b['successes']}/{n}")
    if p["train"]["above"] and not p["test"]["above"]:
        out.append("above both on the train objects fine-tuning practised on, not on the test objects: what the "
                   "residual learned there does not carry over (compare an unconditioned residual: "
                   "'deft-robot distill --kind mean', then 'eval --policy mean')")
    elif p["test"]["above"] and not p["train"]["above"] and \
            0 < (a := row["affordance_train"])["success_rate"] >= row["deft_train"]["success_rate"]:
        out.append(f"gains on the test objects but not on the train objects, where the prior alone already "
                   f"succeeds {a['successes']}/{a['trials']}: the residual moves grasps the prior held")
    ft = row.get("finetune")
    if ft and ft["successes"] is not None:  # (not recorded with an operator's scores)
        errors = (f" ({ft['controller_errors']} of {ft['episodes']} ended in a controller error: collision or "
                  "unreachable pose)") if ft["controller_errors"] else ""
        if ft["successes"] == 0:
            out.append(f"no fine-tuning episode succeeded{errors}: CEM had no success to move towards and the "
                       "policy was distilled from failures")
        elif ft["successful_elites"] < ft["elites"]:
            out.append(f"only {ft['successes']} of {ft['episodes']} fine-tuning episodes succeeded{errors}: "
                       f"{ft['elites'] - ft['successful_elites']} of the {ft['elites']} episodes the policy is "
                       "distilled from are failures")
    return out


def _tau_name(digest: str | None) -> str:
    return "the scripted τ" if digest is None else f"τ {digest}"


def fmt_cell(cell: dict | None) -> str:
    """``"70 % (7/10)"``, or ``missing``."""
    if cell is None:
        return MISSING
    return f"{100 * cell['success_rate']:.0f} % ({cell['successes']}/{cell['trials']})"


def _sigma(meta) -> tuple[float, float, float]:
    """The run's σ₀ (μ m, θ rad, hand rad)."""
    c = meta.cem_config()
    return (c.sigma_mu, c.sigma_theta, c.sigma_hand)


def _sigma_text(sigma) -> str:
    return f"({sigma[0]:g} m, {sigma[1]:g} rad, {sigma[2]:g} rad)"


def _pictures(run: RunDir, rwo: RunDir | None) -> list[str]:
    """The contact sheets on disk for a Table 2 row (deft_core.finetune.sheet): the fine-tuning runs'
    ``episodes.png`` and the evaluations' trial sheets, DEFT's run first."""
    found = []
    for rd, policies in ((run, ("affordance", "deft")), (rwo, ("real-world-only",))):
        if rd is None:
            continue
        candidates = [rd.sheet_png] + [rd.eval_path(p, s).with_suffix(".png") for p in policies for s in SPLITS]
        found += [str(p) for p in candidates if p.is_file()]
    return found


def _robot_name(robot: str) -> str:
    """``sim``/``toy``, or a robot YAML's file name."""
    return robot if robot in ("sim", "toy") else Path(robot).name


def collect(root: str | Path) -> dict:
    """Everything the report shows, as JSON-ready data (see :func:`write_report`)."""
    runs = discover_runs(root)
    tasks = sorted({m.task for _, m in runs})
    table2, table3_policy, table3_reward, curves, logs = [], [], [], {}, {}
    for task in tasks:
        task_runs = [(r, m) for r, m in runs if m.task == task]
        rwo = _pick([(r, m) for r, m in task_runs if m.prior == "real-world-only" and m.reward in MAIN_REWARDS
                     and m.split == "train"])
        mains = [(r, m) for r, m in task_runs if m.is_main]
        task_curves = (_curve(r, m, logs) for r, m in mains + ([rwo] if rwo else []))
        curves[task] = {"runs": [c for c in task_curves if c]}
        for run, meta in mains:
            row = {"task": task, "prior": meta.prior, "run": str(run.path), "reward_source": meta.reward,
                   "run_seed": meta.seed, "checkpoint_digest": (meta.extra or {}).get(CHECKPOINT_DIGEST)}
            for method in TABLE2_METHODS:
                src = rwo[0] if method == "real-world-only" and rwo else (None if method == "real-world-only" else run)
                for split in SPLITS:
                    row[f"{method}_{split}"] = _cell(src, method, split)
                    progress = partial_progress(src.eval_path(method, split)) if src is not None else None
                    if row[f"{method}_{split}"] is None and progress:  # stopped part-way: say so, not just "missing"
                        row.setdefault("unfinished", []).append(
                            f"{TABLE2_LABELS[method]} on {split} objects, {progress[0]} of {progress[1] or '?'} trials")
            row["pattern"] = pattern(row)
            row["finetune"] = finetune_stats(run, logs)
            row["finetune_rwo"] = finetune_stats(rwo[0], logs) if rwo else None
            row["why_not"] = why_not(row)
            row["trajectory"] = meta.trajectory
            warnings = []
            if rwo and rwo[1].trajectory != meta.trajectory:  # the two columns moved the object differently
                warnings.append(f"DEFT and real-world-only ran different post-grasp trajectories "
                                f"({_tau_name(meta.trajectory)} vs {_tau_name(rwo[1].trajectory)}): not a like-for-like comparison")
            if rwo and rwo[1].robot != meta.robot:  # e.g. a lab run next to a simulated one under one --runs
                warnings.append(f"DEFT ran on {_robot_name(meta.robot)}, real-world-only on {_robot_name(rwo[1].robot)}: "
                                "not a like-for-like comparison")
            sigma, sigma_rwo = _sigma(meta), (_sigma(rwo[1]) if rwo else None)
            if rwo and sigma != sigma_rwo:
                warnings.append(f"DEFT explored with σ₀ = {_sigma_text(sigma)}, real-world-only with "
                                f"{_sigma_text(sigma_rwo)}: not a like-for-like comparison")
            elif sigma != TABLE4_SIGMA:
                warnings.append(f"fine-tuned with σ₀ = {_sigma_text(sigma)}, not Table 4's {_sigma_text(TABLE4_SIGMA)} "
                                "(deft-robot finetune --sigma)")
            stale = [f"{TABLE2_LABELS[m]} on {s} objects" for m in TABLE2_METHODS for s in SPLITS
                     if (row[f"{m}_{s}"] or {}).get("stale")]
            if stale:
                warnings.append(f"{', '.join(stale)}: the evaluation ran a policy that has since been distilled again "
                                f"(re-run deft-robot eval)")
            if warnings:
                row["warning"] = "; ".join(warnings)
            row["pictures"] = _pictures(run, rwo[0] if rwo else None)
            table2.append(row)
            prow = {"task": task, "prior": meta.prior, "run": str(run.path)}
            for kind in ("affordance",) + ABLATION_KINDS:
                for split in SPLITS:
                    prow[f"{kind}_{split}"] = _cell(run, kind, split)
            table3_policy.append(prow)
            for r2, m2 in [(run, meta)] + [(r, m) for r, m in task_runs if m.prior == meta.prior and m.split == "train"
                                           and m.reward not in MAIN_REWARDS]:
                rrow = {"task": task, "prior": meta.prior, "reward": m2.reward, "run": str(r2.path)}
                for split in SPLITS:
                    rrow[f"deft_{split}"] = _cell(r2, "deft", split)
                table3_reward.append(rrow)
        if not mains and rwo:
            row = {"task": task, "prior": None, "run": None, "reward_source": None}
            for method in TABLE2_METHODS:
                for split in SPLITS:
                    row[f"{method}_{split}"] = _cell(rwo[0], method, split) if method == "real-world-only" else None
            row["pattern"] = pattern(row)
            row["finetune"], row["finetune_rwo"], row["why_not"] = None, finetune_stats(rwo[0], logs), []
            table2.append(row)
    summary = _table2_summary(table2, ("holds", "significant"))
    return {"format": "deft-report", "version": 1, "runs_root": str(Path(root).resolve()),
            "num_runs": len(runs), "table2": table2, "table2_summary": summary, "table3_policy": table3_policy,
            "table3_reward": table3_reward, "curves": curves}


def _table2_summary(table2: list[dict], flags: tuple[str, ...]) -> dict:
    """``tasks``: how many tasks have every Table 2 cell on disk; per flag of the rows' ``pattern`` (holds,
    significant, …), the sorted tasks where it is true. Table 2 is DEFT from the affordance model: a task
    with affordance-prior rows is judged on those alone (an oracle-prior run beside it does not make the
    task count), and on all of its rows (each must hold) where it has none (toy or oracle-only reports)."""
    judged = [r for r in table2 if all(r["pattern"][s]["above"] is not None for s in SPLITS)]
    by_task: dict[str, list[dict]] = {}
    for r in judged:
        by_task.setdefault(r["task"], []).append(r)
    chosen = {t: [r for r in rows if r["prior"] == "affordance"] or rows for t, rows in by_task.items()}
    return {"tasks": len(chosen),
            **{f: sorted(t for t, rows in chosen.items() if all(r["pattern"][f] for r in rows)) for f in flags}}


def _pick(candidates: list[tuple[RunDir, RunMeta]]) -> tuple[RunDir, RunMeta] | None:
    """The run named exactly like its prior if present, else the first by path."""
    if not candidates:
        return None
    exact = [c for c in candidates if c[0].path.name == c[1].prior]
    return (exact or candidates)[0]


def _curve(run: RunDir, meta: RunMeta, cache: dict) -> dict | None:
    """Reward and elite-mean per episode of a run's fine-tuning log (None if it has no log)."""
    log = _read_log(run, cache)
    if log is None:
        return None
    from deft_core.finetune.cem import CEMConfig
    from deft_core.finetune.plots import run_curves

    run_meta, ok = log
    c = run_curves(ok, CEMConfig.from_dict(run_meta["cem"]))
    return {"run": str(run.path), "label": "real-world-only" if meta.prior == "real-world-only" else f"DEFT ({meta.prior} prior)",
            "episode": c["episode"].tolist(), "reward": c["reward"].tolist(), "elite_mean": c["elite_mean"].tolist(),
            "success": [bool(r.success) for r in ok], "warmup": int(run_meta["cem"]["warmup_episodes"])}


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _warnings_and_reasons(table2: list[dict], read_off: str) -> list[str]:
    """Markdown lines under Table 2: each row's warning, then why the pattern fails where it does."""
    out = []
    warned = [r for r in table2 if r.get("warning")]
    if warned:
        out += [f"**Warning** — **{r['task']}** ({r['prior']} prior): {r['warning']}." for r in warned] + [""]
    reasons = [r for r in table2 if r.get("why_not")]
    if reasons:
        out += [f"Why not, read off {read_off}:", ""]
        out += [f"- **{r['task']}** ({r['prior']} prior): " + "; ".join(r["why_not"]) + "." for r in reasons] + [""]
    return out


def _table3a_rows(prows: list[dict]) -> list[dict]:
    """The Table 3a rows worth showing: where some task has an ablation evaluated, only those tasks (the
    others are Table 2's prior and DEFT again, with a column of "missing" cells); otherwise all of them."""
    ablations = [k for k in ABLATION_KINDS if k != "deft"]
    shown = [r for r in prows if any(r[f"{k}_{s}"] is not None for k in ablations for s in SPLITS)]
    return shown or prows


def _table3a_markdown(prows: list[dict]) -> tuple[list[str], list[str]]:
    """Table 3a's lines (the prior alone and each distilled policy kind, train and test, on the rows of
    :func:`_table3a_rows`) and the kinds evaluated on no task: those get a line saying how to produce them,
    not a column of "missing" cells (the demo distils only the cVAE unless asked for Table 3)."""
    prows = _table3a_rows(prows)
    unevaluated = [k for k in ABLATION_KINDS if k != "deft" and all(r[f"{k}_{s}"] is None for r in prows for s in SPLITS)]
    kinds = ("affordance",) + tuple(k for k in ABLATION_KINDS if k not in unevaluated)
    header = ["task", "prior"] + [f"{k} ({s})" for k in kinds for s in SPLITS]
    rows = [[r["task"], r["prior"]] + [fmt_cell(r[f"{k}_{s}"]) for k in kinds for s in SPLITS] for r in prows]
    out = [_md_table(header, rows) if rows else "_no runs_", "",
           "`affordance` = the prior alone; `deft` = the cVAE (§3.2); `mlp`, `transformer`, `direct` = Table 3's "
           "ablations; `mean` = the top-10 mean residual (reference)."]
    if unevaluated and rows:
        out += ["", f"Not evaluated on any task: {', '.join(unevaluated)}. To add them: `deft-robot distill --task T "
                    f"--kind all`, then `deft-robot eval --task T --policy KIND --objects both` for each kind "
                    "(`deft demo --table3` does this for Table 3's tasks)."]
    return out, unevaluated


def to_markdown(report: dict) -> str:
    """Table 2 and Table 3 as markdown (success rate and successes/trials per cell)."""
    out = ["# DEFT evaluation report", "",
           f"From {report['num_runs']} run(s) under `{report['runs_root']}`. Cells: success rate (successes/trials) "
           f"on fresh held-out resets; `{MISSING}` = no evaluation on disk.", "",
           "## Table 2: success rate per task and method", ""]
    header = (["task", "prior"] + [f"{TABLE2_LABELS[m]} ({s})" for m in TABLE2_METHODS for s in SPLITS]
              + ["DEFT above both?"])
    rows = [[r["task"], r["prior"] or MISSING] + [fmt_cell(r[f"{m}_{s}"]) for m in TABLE2_METHODS for s in SPLITS]
            + [_fmt_pattern(r["pattern"])] for r in report["table2"]]
    sm = report["table2_summary"]
    verdict = (f"The pattern (DEFT strictly above both baselines on train and on test objects) holds on "
               f"**{len(sm['holds'])} of {sm['tasks']}** task(s) with all cells on disk"
               + (f" ({', '.join(sm['holds'])})" if sm["holds"] else "")
               + f"; significant on both splits (one-sided tests against each baseline, p < 0.05 against both: exact "
               f"McNemar on the paired trials — every policy is evaluated on the same scenes — else Fisher) on "
               f"{len(sm['significant'])}" + (f" ({', '.join(sm['significant'])})" if sm["significant"] else "")
               + ". With 10 paired trials, p < 0.05 needs e.g. 5 scenes won and none lost, or 7 won and 1 lost.")
    out += [_md_table(header, rows) if rows else "_no runs_", "", verdict, ""]
    unfinished = [f"**{r['task']}** ({r['prior']} prior): " + "; ".join(r["unfinished"]) for r in report["table2"]
                  if r.get("unfinished")]
    if unfinished:
        out += ["Evaluations stopped part-way (their cells show `missing`; run the same `deft-robot eval` command "
                "again to finish them): " + " · ".join(unfinished) + ".", ""]
    out += _warnings_and_reasons(report["table2"], "the cells and the fine-tuning logs")
    ft_rows, seen = [], set()
    for r in report["table2"]:
        for label, ft in ((r["prior"], r.get("finetune")), ("real-world-only", r.get("finetune_rwo"))):
            if ft and ft["run"] not in seen:  # one baseline run serves every DEFT run of its task
                seen.add(ft["run"])
                scored = ft["successes"] is None
                ft_rows.append([r["task"], label, "not recorded" if scored else f"{ft['successes']}/{ft['episodes']}",
                                str(ft["controller_errors"]),
                                f"{ft['mean_reward_first10']:.2f} → {ft['mean_reward_last10']:.2f}",
                                f"mean reward {ft['elite_mean_reward']:.2f} of {ft['elites']}" if scored
                                else f"{ft['successful_elites']}/{ft['elites']}"])
    if ft_rows:
        out += ["## Fine-tuning (Algorithm 1) per run", "",
                _md_table(["task", "prior", "successes", "controller errors", "mean reward, first 10 → last 10 episodes",
                           "successful elites (what the policy learns from)"], ft_rows), ""]
    out += ["## Table 3a: residual policies distilled from the same run", ""]
    table3a, unevaluated = _table3a_markdown(report["table3_policy"])
    out += table3a
    out += ["", "## Table 3b: reward source of the fine-tuning (DEFT policy)", ""]
    rows = [[r["task"], r["prior"], r["reward"]] + [fmt_cell(r[f"deft_{s}"]) for s in SPLITS] for r in report["table3_reward"]]
    out += [_md_table(["task", "prior", "reward", "DEFT (train)", "DEFT (test)"], rows) if rows else "_no runs_", ""]
    shown = {"table2": report["table2"], "table3_policy": _table3a_rows(report["table3_policy"]),
             "table3_reward": report["table3_reward"]}
    missing = sum(v is None for t, rows in shown.items() for r in rows
                  for k, v in r.items() if k.endswith(SPLITS) and not (t == "table3_policy" and k.rsplit("_", 1)[0] in unevaluated))
    out += [f"{missing} cell(s) missing. Improvement curves: `improvement_curves.png`.", ""]
    pictures = [f"- **{r['task']}**: " + ", ".join(f"`{p}`" for p in r["pictures"]) for r in report["table2"]
                if r.get("pictures")]
    if pictures:
        out += ["## Contact sheets (`deft-robot show`)", "",
                "Each fine-tuning run's episodes (`episodes.png`) and each evaluation's trials (`eval/*.png`): the "
                "initial and final image of every episode or trial, with where the prior and the executed grasp "
                "put the contact.", "", *pictures, ""]
    return "\n".join(out)


#: panels per row of the improvement-curves figure (seven tasks → two rows, readable on a laptop screen)
CURVE_COLUMNS = 4


def curve_colours(report: dict) -> dict[str, str]:
    """One colour per curve label across every panel (real-world-only red, the others C0, C1, … in order of
    first appearance), so the figure's single legend is true for every task."""
    labels = dict.fromkeys(c["label"] for cur in report["curves"].values() for c in cur["runs"])
    others = itertools.cycle(f"C{i}" for i in (0, 2, 4, 1, 5, 6, 7, 8, 9))   # C3 is tab:red
    return {label: "tab:red" if label == "real-world-only" else next(others) for label in labels}


def plot_curves(report: dict, path: str | Path) -> Path | None:
    """Figure 6 style: one panel per task (at most :data:`CURVE_COLUMNS` per row), reward per episode
    (dots) and the running elite mean (line), DEFT run(s) vs real-world-only, one legend for the figure.
    Returns None when no run has a log."""
    tasks = [t for t, c in report["curves"].items() if c["runs"]]
    if not tasks:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = min(CURVE_COLUMNS, len(tasks))
    nrow = -(-len(tasks) // ncol)
    spare = nrow * ncol > len(tasks)   # an empty panel holds the legend; else a strip below the panels
    colours = curve_colours(report)
    names = _pooled_legend_names(report, tasks) if report.get("pooled") else {}
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.1 * nrow), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        runs = report["curves"][task]["runs"]
        if report.get("pooled"):
            _plot_pooled_curves(ax, runs, colours, names)
        else:
            for c in runs:
                colour = colours[c["label"]]
                ax.plot(c["episode"], c["reward"], "o", ms=3, alpha=0.45, color=colour)
                ax.plot(c["episode"], c["elite_mean"], "-", color=colour, label=c["label"] + " (elite mean)")
        ax.axvline(report["curves"][task]["runs"][0]["warmup"] + 0.5, color="grey", ls=":")
        ax.set_title(task)
        ax.set_xlabel("CEM episode")
        ax.set_ylabel("reward")
        ax.set_ylim(-0.05, 1.05)
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    note = ("thick line: the runs' elite mean averaged over the runs roots; thin: each run's; dots: mean reward "
            "per episode" if report.get("pooled") else "line: elite mean; dots: reward per episode")
    # about 14 characters of 8-point text per inch: wrap the note and lay the legend out to the figure's width
    note = "\n".join(textwrap.wrap(note + "; dotted: end of the warm-up", 60 if spare else int(14 * 4.2 * ncol)))
    if spare:
        axes.flat[-1].legend(handles.values(), handles.keys(), loc="center", fontsize=8, frameon=False, title=note,
                             title_fontsize=8)
        fig.tight_layout()
    else:
        widest = max(len(h) for h in handles) if handles else 0
        cols = max(1, min(len(handles), int(14 * 4.2 * ncol) // max(widest + 6, 1)))
        lines = note.count("\n") + 1 + -(-len(handles) // cols)
        strip = 0.2 + 0.17 * lines
        fig.set_size_inches(4.2 * ncol, 3.1 * nrow + strip)
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=cols, fontsize=8,
                   frameon=False, title=note, title_fontsize=8)
        fig.tight_layout(rect=(0, strip / (3.1 * nrow + strip), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _pooled_legend_names(report: dict, tasks: list[str]) -> dict[str, str]:
    """Legend text per label: ``"<label>, 5 runs"``, or ``"<label>, 3–5 runs per task"`` when tasks differ
    (one legend serves every panel, so the count cannot be one panel's)."""
    counts: dict[str, set] = {}
    for t in tasks:
        runs = report["curves"][t]["runs"]
        for label in dict.fromkeys(c["label"] for c in runs):
            counts.setdefault(label, set()).add(sum(c["label"] == label for c in runs))
    return {label: f"{label}, {min(n)} runs" if len(n) == 1 else f"{label}, {min(n)}–{max(n)} runs per task"
            for label, n in counts.items()}


def _plot_pooled_curves(ax, runs: list[dict], colours: dict[str, str], names: dict[str, str]) -> None:
    """The curves of several runs roots on one panel: per label (DEFT, real-world-only) each run's elite
    mean thin, their mean thick, and the mean reward per episode over the runs as dots."""
    import numpy as np

    for label in dict.fromkeys(c["label"] for c in runs):
        group = [c for c in runs if c["label"] == label]
        colour = colours[label]
        n = min(len(c["episode"]) for c in group)
        episodes = group[0]["episode"][:n]
        for c in group:
            ax.plot(c["episode"], c["elite_mean"], "-", lw=0.8, alpha=0.3, color=colour)
        ax.plot(episodes, np.mean([c["reward"][:n] for c in group], axis=0), "o", ms=3, alpha=0.6, color=colour)
        ax.plot(episodes, np.mean([c["elite_mean"][:n] for c in group], axis=0), "-", lw=2.2, color=colour,
                label=names.get(label, label))


def _pool_cells(cells: list[dict | None]) -> dict | None:
    """The same Table 2 cell of several runs as one cell: successes and trials summed, the trials'
    outcomes concatenated (run after run, so two pooled cells whose runs each paired their trials stay
    paired). None when any run lacks the cell."""
    if not cells or any(c is None for c in cells):
        return None
    n = sum(c["trials"] for c in cells)
    k = sum(c["successes"] for c in cells)
    cell = {"successes": k, "trials": n, "success_rate": k / n if n else 0.0,
            "mean_reward": sum(c["mean_reward"] * c["trials"] for c in cells) / n if n else 0.0,
            "sources": [c["source"] for c in cells]}
    if all(c.get("trial_outcomes") for c in cells):
        cell["trial_outcomes"] = [tuple(o) for c in cells for o in c["trial_outcomes"]]
    return cell


def _pool_finetune(stats: list[dict | None]) -> dict | None:
    """:func:`finetune_stats` of several runs of one task summed (counts) or averaged (mean rewards)."""
    if not stats or any(s is None for s in stats):
        return None

    def total(key):
        return None if any(s[key] is None for s in stats) else sum(s[key] for s in stats)

    out = {"run": " + ".join(s["run"] for s in stats), "runs": [s["run"] for s in stats]}
    out.update({k: total(k) for k in ("episodes", "successes", "controller_errors", "elites", "successful_elites")})
    out.update({k: sum(s[k] for s in stats) / len(stats)
                for k in ("mean_reward_first10", "mean_reward_last10", "elite_mean_reward")})
    return out


def _sign_flip_p(diffs: list[float]) -> float:
    """One-sided p-value that the mean of ``diffs`` (one per run) is above 0: the exact sign-flip
    (paired permutation) test — under no effect each run's difference is as likely negative as positive —
    so the run, not the trial, is the unit and scenes repeated across runs do not inflate it. Exact up to
    16 runs; above that a Monte Carlo estimate from 200 000 seeded random sign assignments, with the
    (count + 1) / (draws + 1) correction so it is never 0 nor below what the exact test could give."""
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    observed = d.sum()
    if len(d) <= 16:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    else:
        signs = np.random.default_rng(0).choice([-1, 1], size=(200_000, len(d)))
        return float((np.sum(signs @ d >= observed - 1e-12) + 1) / (len(signs) + 1))
    return float(np.mean(signs @ d >= observed - 1e-12))


def _p_runs(rows: list[dict], split: str) -> float | None:
    """The larger, over the two baselines, of :func:`_sign_flip_p` on DEFT's success rate minus the
    baseline's, one difference per runs root (None when a root lacks a cell)."""
    ps = []
    for base in ("affordance", "real-world-only"):
        cells = [(r.get(f"deft_{split}"), r.get(f"{base}_{split}")) for r in rows]
        if any(d is None or b is None for d, b in cells):
            return None
        ps.append(_sign_flip_p([d["success_rate"] - b["success_rate"] for d, b in cells]))
    return max(ps)


def _pool_table3a(reports: list[dict]) -> list[dict]:
    """Table 3a (each policy kind distilled from the same run) pooled over the roots like Table 2: a
    kind's cell sums the roots in which that kind was evaluated on both splits (``<kind>_roots`` says how
    many), so a kind evaluated in some seeds only is pooled over those and says so."""
    keyed: dict[tuple, list[dict]] = {}
    for rep in reports:
        for row in rep.get("table3_policy", []):
            keyed.setdefault((row["task"], row["prior"], Path(row["run"]).name), []).append(row)
    out = []
    for (task, prior, _), rows in keyed.items():
        prow = {"task": task, "prior": prior, "run": None, "runs": [r["run"] for r in rows], "runs_pooled": len(rows)}
        for kind in ("affordance",) + ABLATION_KINDS:
            have = [r for r in rows if all(r[f"{kind}_{s}"] is not None for s in SPLITS)]
            for split in SPLITS:
                prow[f"{kind}_{split}"] = _pool_cells([r[f"{kind}_{split}"] for r in have]) if have else None
            prow[f"{kind}_roots"] = len(have)
        out.append(prow)
    return sorted(out, key=lambda r: (r["task"], r["prior"] or ""))


def pool(reports: list[dict], roots: list[str]) -> dict:
    """Table 2 over several fine-tuning runs of the same tasks (one :func:`collect` report per runs root,
    e.g. the same commands with ``--seed 0, 1, 2``): per (task, prior, reward source) row, every cell
    pooled over the roots that have the row (:func:`_pool_cells`), the pattern judged on the pooled
    cells, and ``holds_in_runs`` — in how many of the roots the pattern held on its own.

    The pooled p-values (:func:`pattern`) treat every (run, scene) pair as independent; the evaluation
    scenes repeat from run to run (same ``--eval-seed``), so read them as indicative, not exact."""
    keyed: dict[tuple, list[dict]] = {}
    for rep in reports:
        for row in rep["table2"]:
            name = Path(row["run"]).name if row.get("run") else None  # e.g. "affordance": the same run in each root
            keyed.setdefault((row["task"], row["prior"], row["reward_source"], name), []).append(row)
    table2 = []
    for (task, prior, reward, _), all_rows in keyed.items():
        seeds = [r.get("run_seed") for r in all_rows if r.get("run_seed") is not None]
        twice = sorted({x for x in seeds if seeds.count(x) > 1})
        if twice:  # a copied root, or two made with the same --seed: one run would count twice
            raise ValueError(f"{task} ({prior} prior): the runs roots hold runs with the same seed {twice} "
                             f"({', '.join(r['run'] for r in all_rows if r.get('run_seed') in twice)}); pool runs of "
                             "different --seed only")
        # a root whose evaluations of this row are incomplete (a cut run) is left out of it, and said so
        rows = [r for r in all_rows if all(r[f"{m}_{s}"] is not None for m in TABLE2_METHODS for s in SPLITS)] or all_rows
        prow = {"task": task, "prior": prior, "reward_source": reward, "run": None,
                "runs": [r["run"] for r in rows], "runs_pooled": len(rows),
                "runs_left_out": [r["run"] for r in all_rows if r not in rows]}
        for method in TABLE2_METHODS:
            for split in SPLITS:
                prow[f"{method}_{split}"] = _pool_cells([r[f"{method}_{split}"] for r in rows])
        prow["pattern"] = pattern(prow)
        for split in SPLITS:
            prow["pattern"][split]["p_runs"] = _p_runs(rows, split)
        runs_p = [prow["pattern"][s]["p_runs"] for s in SPLITS]
        prow["pattern"]["significant_across_runs"] = bool(prow["pattern"]["holds"] and None not in runs_p
                                                          and max(runs_p) < 0.05)
        prow["holds_in_runs"] = sum(bool(r["pattern"]["holds"]) for r in rows)
        prow["finetune"] = _pool_finetune([r.get("finetune") for r in rows])
        prow["finetune_rwo"] = _pool_finetune([r.get("finetune_rwo") for r in rows])
        prow["why_not"] = why_not(prow)
        warnings = sorted({r["warning"] for r in rows if r.get("warning")})
        digests = sorted({r["checkpoint_digest"] for r in rows if r.get("checkpoint_digest")})
        if len(digests) > 1:
            warnings.append(f"the pooled runs started from {len(digests)} different affordance models "
                            f"({', '.join(d[:8] for d in digests)}): the pooled cells mix priors")
        if warnings:
            prow["warning"] = "; ".join(warnings)
        table2.append(prow)
    table2.sort(key=lambda r: (r["task"], r["prior"] or ""))
    summary = _table2_summary(table2, ("holds", "significant", "significant_across_runs"))
    table3_policy = _pool_table3a(reports)
    curves: dict[str, dict] = {}
    for i, rep in enumerate(reports, 1):
        for task, c in rep["curves"].items():
            runs = [dict(run, root=i) for run in c["runs"]]
            curves.setdefault(task, {"runs": []})["runs"].extend(runs)
    return {"format": "deft-report", "version": 1, "pooled": True, "runs_roots": [str(Path(r).resolve()) for r in roots],
            "num_runs": sum(rep["num_runs"] for rep in reports), "table2": table2, "table2_summary": summary,
            "table3_policy": table3_policy,
            "per_root": [{"runs_root": rep["runs_root"], "table2_summary": rep["table2_summary"]} for rep in reports],
            "curves": curves}


def pooled_markdown(report: dict, sub_reports: list[str]) -> str:
    """The pooled report (:func:`pool`) as markdown: Table 2 over all runs roots, how often the pattern
    held in each root alone, the reasons it fails on the pooled cells, and links to each root's own report."""
    k = len(report["runs_roots"])
    out = ["# DEFT evaluation report, pooled over runs", "",
           f"{k} runs roots ({report['num_runs']} runs): " + ", ".join(f"`{r}`" for r in report["runs_roots"])
           + ". Each cell sums that cell's successes and trials over the roots (e.g. the same commands with "
           "`--seed 0, 1, 2`); `holds in runs` counts the roots in which the pattern held on its own.", "",
           "## Table 2, pooled: success rate per task and method", ""]
    header = (["task", "prior"] + [f"{TABLE2_LABELS[m]} ({s})" for m in TABLE2_METHODS for s in SPLITS]
              + ["DEFT above both? (pooled)", "p across runs (train, test)", "holds in runs"])

    def p_runs(r):
        ps = [r["pattern"][s].get("p_runs") for s in SPLITS]
        return MISSING if None in ps else ", ".join(fmt_p(p) for p in ps)

    rows = [[r["task"], r["prior"] or MISSING] + [fmt_cell(r[f"{m}_{s}"]) for m in TABLE2_METHODS for s in SPLITS]
            + [_fmt_pattern(r["pattern"], trial_p=False), p_runs(r), f"{r['holds_in_runs']} of {r['runs_pooled']}"]
            for r in report["table2"]]
    sm = report["table2_summary"]
    per_root = [f"{len(p['table2_summary']['holds'])} of {p['table2_summary']['tasks']}" for p in report["per_root"]]
    out += [_md_table(header, rows) if rows else "_no runs_", "",
            f"On the pooled cells the pattern (DEFT strictly above both baselines on train and on test objects) holds "
            f"on **{len(sm['holds'])} of {sm['tasks']}** task(s)" + (f" ({', '.join(sm['holds'])})" if sm["holds"] else "")
            + f"; in the roots alone on {', '.join(per_root)}. Significant across runs "
            f"(p < 0.05 on both splits) on {len(sm['significant_across_runs'])}"
            + (f" ({', '.join(sm['significant_across_runs'])})" if sm["significant_across_runs"] else "")
            + ": `p across runs` is the exact one-sided sign-flip test on DEFT's success rate minus each baseline's, one "
            f"difference per runs root, the larger of the two (with n roots it cannot go below 0.5^n: {0.5 ** k:.3g} for "
            f"all {k}" + ("; above 16 roots a Monte Carlo estimate" if k > 16 else "") + "). The "
            "JSON also holds the trial-level tests of a single report on the pooled trials (`pattern.<split>.p`); they "
            "treat each (run, scene) pair as independent although the scenes repeat from run to run, so they flatter "
            "and the table leaves them out.", ""]
    left = [r for r in report["table2"] if r.get("runs_left_out")]
    if left:
        out += [f"Left out of **{r['task']}** ({r['prior']} prior), evaluations incomplete: "
                + ", ".join(f"`{x}`" for x in r["runs_left_out"]) + "." for r in left] + [""]
    out += _warnings_and_reasons(report["table2"], "the pooled cells and fine-tuning logs")
    t3 = report.get("table3_policy") or []
    if any(r[f"{k}_roots"] for r in t3 for k in ABLATION_KINDS if k != "deft"):  # Table 3 was evaluated somewhere
        out += ["## Table 3a, pooled: residual policies distilled from the same runs", ""]
        out += _table3a_markdown(t3)[0]
        partial = sorted({f"{r['task']} {k} ({r[f'{k}_roots']} of {r['runs_pooled']} roots)" for r in t3
                          for k in ("affordance",) + ABLATION_KINDS if 0 < r[f"{k}_roots"] < r["runs_pooled"]})
        out += ["", "Each cell sums the roots in which that policy was evaluated on both splits"
                + (": not all of them for " + ", ".join(partial) + "." if partial else " (all of them)."), ""]
    out += ["## Each runs root's own report", ""]
    out += [f"- `{root}` → `{sub}`" for root, sub in zip(report["runs_roots"], sub_reports)] + [""]
    return "\n".join(out)


def write_report(runs_root: "str | Path | list[str | Path]", out_dir: str | Path) -> dict:
    """Write ``report.md``, ``report.json`` and ``improvement_curves.png`` to ``out_dir``; returns the
    paths and the report data. Raises ``ValueError`` — writing nothing, so an earlier report in
    ``out_dir`` survives a mistyped ``--runs`` — when there are no runs under ``runs_root``. A report
    without fine-tuning logs has no curves: a stale ``improvement_curves.png`` is removed.

    Several runs roots (a list of more than one): each root's own report goes to
    ``out_dir/root<i>/``, and ``out_dir``'s report is Table 2 pooled over them (:func:`pool`)."""
    roots = list(runs_root) if isinstance(runs_root, (list, tuple)) else [runs_root]
    if len(set(Path(r).resolve() for r in roots)) < len(roots):
        raise ValueError("the same runs root is named twice: " + ", ".join(str(r) for r in roots))
    reports = [collect(r) for r in roots]
    empty = [str(r) for r, rep in zip(roots, reports) if rep["num_runs"] == 0]
    if empty:
        raise ValueError(f"no runs under {', '.join(empty)} (expected <runs>/<task>/<run>/run_meta.json); "
                         "run 'deft-robot finetune' first")
    _remove_stale_root_reports(Path(out_dir), keep=len(roots) if len(roots) > 1 else 0)
    if len(roots) == 1:
        return _write(reports[0], to_markdown(reports[0]), Path(out_dir))
    subs = [_write(rep, to_markdown(rep), Path(out_dir) / f"root{i}")["markdown"] for i, rep in enumerate(reports, 1)]
    report = pool(reports, roots)
    return _write(report, pooled_markdown(report, [str(p) for p in subs]), Path(out_dir))


def _remove_stale_root_reports(out: Path, keep: int) -> None:
    """Remove ``out/root<i>/`` for i > ``keep`` that an earlier pooled report wrote (only folders holding
    nothing but this module's three files), so a report over fewer roots leaves none of the old ones."""
    import re
    import shutil

    if not out.is_dir():
        return
    ours = {"report.md", "report.json", "improvement_curves.png"}
    for d in out.iterdir():
        m = re.fullmatch(r"root(\d+)", d.name)
        if m and d.is_dir() and int(m.group(1)) > keep and {f.name for f in d.iterdir()} <= ours:
            shutil.rmtree(d)


def _write(report: dict, md_text: str, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    md = out / "report.md"
    md.write_text(md_text)
    js = write_json(out / "report.json", report)
    png = plot_curves(report, out / "improvement_curves.png")
    if png is None:
        (out / "improvement_curves.png").unlink(missing_ok=True)
    return {"markdown": md, "json": js, "png": png, "report": report}


__all__ = ["collect", "pool", "pooled_markdown", "pattern", "why_not", "finetune_stats", "to_markdown", "plot_curves", "curve_colours", "write_report", "fmt_cell", "MISSING"]
