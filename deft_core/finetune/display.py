"""A rich renderable for the live fine-tuning display (the CLI owns the terminal; this only builds
what it shows). Usage in a CLI::

    from rich.live import Live
    view = FinetuneView(task="pick_cup")
    with Live(view, refresh_per_second=4) as live:
        run_finetune(env, reward_fn, config, log_dir, progress_callback=view.update)
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from deft_core.finetune.loop import ProgressEvent


class FinetuneView:
    """Keeps the progress events of a run and renders the last ``rows`` of them plus a summary line:
    episode, reward, success, elite mean reward, and D's mean std per group (μ mm, θ rad, hand rad)."""

    def __init__(self, task: str, rows: int = 12) -> None:
        self.task, self.rows = task, rows
        self.events: list[ProgressEvent] = []

    def update(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def __rich__(self) -> Group:
        table = Table(title=f"DEFT fine-tuning: {self.task}", expand=False)
        for col in ("episode", "reward", "success", "elite mean", "σ μ (mm)", "σ θ (rad)", "σ hand (rad)", "D"):
            table.add_column(col, justify="right")
        for e in self.events[-self.rows:]:
            episode = f"{e.episode}/{e.total}" + (f" (redo {e.attempt})" if e.attempt else "")
            reward = Text("void", style="yellow") if e.void else Text(f"{e.reward:.3f}")
            success = "" if e.success is None else ("yes" if e.success else "no")
            elite = "" if math.isnan(e.elite_mean_reward) else f"{e.elite_mean_reward:.3f}"
            table.add_row(episode, reward, success, elite, f"{1000 * e.sigma['mu']:.1f}", f"{e.sigma['theta']:.3f}",
                          f"{e.sigma['hand']:.3f}", "refit" if e.refit else "warm-up" if not e.void else "")
        last = self.events[-1] if self.events else None
        if last is None:
            summary = Text("waiting for the first episode…")
        else:
            done = sum(1 for e in self.events if not e.void) + last.resumed_episodes
            summary = Text(f"{done}/{last.total} episodes done"
                           + (f" ({last.resumed_episodes} resumed from the log)" if last.resumed_episodes else "")
                           + f", {sum(e.void for e in self.events)} void")
        return Group(table, summary)
