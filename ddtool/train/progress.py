"""Training progress on stderr (stdout is for results only): a bar per epoch, a line after it."""

from __future__ import annotations

_console = None


def stderr_console():
    global _console
    if _console is None:
        from rich.console import Console

        # stdout is for results only; training chatter goes to stderr.
        _console = Console(stderr=True)
    return _console


class EpochProgress:
    """A rich progress bar for one epoch showing images/s and the running loss."""

    def __init__(self, title: str, total: int, enabled: bool = True):
        self.title, self.total, self.enabled = title, total, enabled
        self._progress = None

    def __enter__(self) -> "EpochProgress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} img/s  loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.title, total=self.total, rate=0.0, loss=float("nan"))
        return self

    def advance(self, images_per_s: float, loss: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, rate=images_per_s, loss=loss)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def report_epoch(row: dict) -> None:
    stderr_console().print(
        f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
        f"val AUC {row['val_auc']:.4f}  val ACC {row['val_acc']:.4f}  lr {row['lr']:.2e}  "
        f"{row['images_per_s']:.1f} img/s  {row['seconds']:.1f} s",
        highlight=False,
    )

