"""Per-medium metric tables: what the bench measures, the report plots and BD-rates on.

A medium's table names its rate column (``bpp`` for pixels; a splat table would use bits per
Gaussian), every quality column the metric function returns, the primary metric (BD-rate,
BD-quality, the progress bar) and an optional secondary one (a second BD-rate column).
"""

from __future__ import annotations

from dataclasses import dataclass

from neurocodec.errors import InputError


@dataclass(frozen=True)
class Metric:
    key: str  # results column, e.g. "psnr-rgb"
    label: str  # axis label, e.g. "PSNR-RGB [dB]"
    stem: str  # plot file stem, e.g. "rd-psnr"


@dataclass(frozen=True)
class MetricTable:
    rate: str  # results column of the rate, e.g. "bpp"
    rate_label: str  # e.g. "bits per pixel"
    metrics: tuple[str, ...]  # every quality column of a result
    primary: Metric
    secondary: Metric | None = None
    max_plot_rate: float = 3.0  # x axis clip: a few very high-rate points squash every curve

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.rate, *self.metrics, "encoding_time", "decoding_time")

    @property
    def plots(self) -> tuple[Metric, ...]:
        return (self.primary,) + ((self.secondary,) if self.secondary else ())


_PSNR = Metric("psnr-rgb", "PSNR-RGB [dB]", "rd-psnr")
_MSSSIM = Metric("ms-ssim-rgb", "MS-SSIM [dB]", "rd-msssim")
IMAGE_TABLE = MetricTable("bpp", "bits per pixel", ("psnr-rgb", "psnr-y", "psnr-yuv",
                                                    "ms-ssim-rgb"), _PSNR, _MSSSIM)
# Clips: the same columns, averaged over frames; the rate counts every frame's pixels.
VIDEO_TABLE = IMAGE_TABLE

# Splat scenes: bits per Gaussian; quality = PSNR / SSIM between renders of the decoded and of
# the original scene over the same orbit views (neurocodec.codecs.splat.render).
SPLAT_TABLE = MetricTable("bpg", "bits per Gaussian", ("psnr-rgb", "ssim-rgb"), _PSNR,
                          Metric("ssim-rgb", "SSIM (render)", "rd-ssim"), max_plot_rate=200.0)

TABLES: dict[str, MetricTable] = {"image": IMAGE_TABLE, "video": VIDEO_TABLE,
                                  "splat": SPLAT_TABLE}


def table_for(medium: str) -> MetricTable:
    if medium not in TABLES:
        raise InputError(f"no metric table for medium {medium!r} "
                         f"(known: {', '.join(sorted(TABLES))})")
    return TABLES[medium]
