"""What a run reports: ``log.csv`` (training), ``val.csv`` (validation), TensorBoard events in
``tb/``, and a progress bar. Only the main process makes one (see ddp.Dist.main)."""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

from torch import Tensor
from tqdm import tqdm

from neurocodec.train.checkpoint import truncate_log

TRAIN_COLUMNS = ["step", "minutes", "lr", "loss", "bpp", "psnr", "aux"]
VAL_COLUMNS = ["step", "quality", "lmbda", "images", "pixels", "bytes", "bpp", "bpp_est",
               "psnr", "ms_ssim"]


class _Csv:
    """An append-only CSV whose rows past ``step`` are dropped on a resume."""

    def __init__(self, path: Path, columns: list[str], step: int):
        truncate_log(path, step)
        new = not path.exists() or path.stat().st_size == 0
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(columns)

    def write(self, row: list) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _summary_writer(log_dir: Path, step: int):
    """A TensorBoard writer that forgets events past ``step`` (a resume), or None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # tensorboard is optional at run time: the CSVs still get written
        warnings.warn(f"TensorBoard logging off ({e})", stacklevel=3)
        return None
    return SummaryWriter(str(log_dir), purge_step=step)


class RunLog:
    def __init__(self, out: Path, step: int, total: int | None, progress: str = "auto",
                 tensorboard: bool = True, validation: bool = False):
        self.train = _Csv(out / "log.csv", TRAIN_COLUMNS, step)
        self.val = _Csv(out / "val.csv", VAL_COLUMNS, step) if validation else None
        self.tb = _summary_writer(out / "tb", step) if tensorboard else None
        # tqdm's own ETA when the run is counted in steps; a time budget shows the minutes left.
        disable = {"on": False, "off": True, "auto": not sys.stderr.isatty()}[progress]
        self.bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True,
                        disable=disable, file=sys.stderr)

    def step(self, step: int, lr: float, r: dict, aux: Tensor, minutes: float,
             minutes_left: float | None, log_every: int) -> None:
        """Called after every training step with the step's ``rd_loss`` result ``r``."""
        if not self.bar.disable:
            post = {"loss": f"{r['loss'].item():.3f}", "bpp": f"{r['bpp'].item():.3f}",
                    "psnr": f"{r['psnr'].item():.2f}"}
            if minutes_left is not None:
                post["left"] = f"{minutes_left:.1f}min"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        if step % log_every:
            return
        vals = {k: r[k].item() for k in ("loss", "bpp", "psnr")}
        aux = aux.item()
        self.train.write([step, f"{minutes:.2f}", f"{lr:.3g}", f"{vals['loss']:.4f}",
                          f"{vals['bpp']:.4f}", f"{vals['psnr']:.2f}", f"{aux:.2f}"])
        if self.tb is not None:
            for k, v in {**vals, "aux": aux, "lr": lr}.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def validation(self, step: int, rows: list[dict]) -> None:
        """Rows of :func:`neurocodec.train.validate.validate`, one per quality."""
        for row in rows:
            self.val.write([step, row["quality"], f"{row['lmbda']:.6g}", row["images"],
                            row["pixels"], row["bytes"], f"{row['bpp']:.6f}",
                            f"{row['bpp_est']:.6f}", f"{row['psnr']:.4f}",
                            f"{row['ms_ssim']:.6f}"])
            if self.tb is not None:
                for k in ("bpp", "bpp_est", "psnr", "ms_ssim"):
                    self.tb.add_scalar(f"val/{k}/q{row['quality']}", row[k], step)
        if rows and not self.bar.disable:
            self.bar.write(f"step {step} val: " + ", ".join(
                f"q{r['quality']} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for r in rows))

    def close(self) -> None:
        self.bar.close()
        self.train.close()
        if self.val is not None:
            self.val.close()
        if self.tb is not None:
            self.tb.close()
