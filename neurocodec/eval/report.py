"""Benchmark reports: BD tables, RD plots (PNG + SVG), Markdown and self-contained HTML.

Inputs are CompressAI-schema results (ours from the runner, published ones from ``--extra``).
The HTML inlines the SVG plots, so the one file can be mailed or archived as it is.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurocodec.eval.bdrate import bd_rate
from neurocodec.eval.metrics import msssim_db
from neurocodec.eval.tables import IMAGE_TABLE, MetricTable


@dataclass
class ReportInput:
    title: str
    results: dict[str, dict]  # measured here, by codec name
    published: dict[str, dict] = field(default_factory=dict)  # label -> results
    anchor: str | None = None
    method: str = "pchip"
    unavailable: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # unreadable item -> why
    meta: dict = field(default_factory=dict)  # dataset, items, seconds, workers, environment…
    table: MetricTable = IMAGE_TABLE  # the medium's rate and quality columns


def bd_table(inp: ReportInput) -> list[dict]:
    """One row per (measured codec, reference): the anchor first, then each published curve."""
    refs = {}
    if inp.anchor and inp.anchor in inp.results:
        refs[inp.anchor] = inp.results[inp.anchor]
    refs.update({f"{k} (published)": v for k, v in inp.published.items()})
    return bd_rows(inp.results, refs, inp.method, inp.table)


def bd_rows(results: dict[str, dict], refs: dict[str, dict], method: str = "pchip",
            table: MetricTable = IMAGE_TABLE) -> list[dict]:
    """BD-rate/BD-quality on the table's primary metric (PSNR-RGB for images), BD-rate on its
    secondary one (MS-SSIM), overlap and warning of every result against every reference (a
    curve is not compared with itself). The keys keep their image names (``bd_psnr``,
    ``bd_rate_msssim``) for every medium."""
    rows = []
    sec = table.secondary.key if table.secondary else None
    for ref_name, ref in refs.items():
        for name, res in results.items():
            if res is ref:
                continue
            p = bd_rate(ref, res, table.primary.key, method, table.rate)
            has_ms = sec is not None and sec in ref["results"] and sec in res["results"]
            m = bd_rate(ref, res, sec, method, table.rate) if has_ms else None
            rows.append({"codec": name, "reference": ref_name, "bd_rate": p["bd_rate"],
                         "bd_psnr": p["bd_psnr"], "overlap": p["overlap"],
                         "bd_rate_msssim": m["bd_rate"] if m else math.nan,
                         "warning": p["warning"]})
    return rows


def speed_table(inp: ReportInput) -> list[dict]:
    rows = []
    k = inp.table.rate
    for name, res in inp.results.items():
        r = res["results"]
        rows.append({"codec": name, "points": len(r[k]),
                     "bpp": f"{min(r[k]):.3f}–{max(r[k]):.3f}",
                     "encode_s": float(np.mean(r["encoding_time"])),
                     "decode_s": float(np.mean(r["decoding_time"])),
                     "description": res.get("description", "")})
    return rows


def plot(inp: ReportInput, out: Path) -> list[Path]:
    """RD curves of the table's metrics, e.g. ``rd-psnr.{png,svg}`` and
    ``rd-msssim.{png,svg}``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text as <text>, not glyph outlines: each report carried its own copy of the font's paths
    # (most of an SVG's size); fixed ids and no date, so an unchanged report rewrites the same
    # bytes.
    svg_style = {"svg.fonttype": "none", "svg.hashsalt": "neurocodec"}
    paths = []
    t = inp.table
    for metric, label, stem in ((m.key, m.label, m.stem) for m in t.plots):
        fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=110)
        curves = ([(n, r, "-o") for n, r in inp.results.items()]
                  + [(f"{n} (published)", r, "--") for n, r in inp.published.items()])
        colors = plt.get_cmap("tab20" if len(curves) > 10 else "tab10").colors
        top = 0.0
        for i, (name, res, style) in enumerate(curves):
            r = res["results"]
            if metric not in r:
                continue
            x, y = np.asarray(r[t.rate], float), np.asarray(r[metric], float)
            if metric.startswith("ms-ssim"):
                y = msssim_db(y)
            o = np.argsort(x)
            lw = 2.4 if name == inp.anchor else 1.4
            ax.plot(x[o], y[o], style, lw=lw, ms=3.5, label=name, color=colors[i % len(colors)])
            top = max(top, float(x.max()))
        if top > t.max_plot_rate:  # a few very high-rate points would squash every curve
            ax.set_xlim(0, t.max_plot_rate)
            ax.text(0.99, 0.01, f"x axis clipped at {t.max_plot_rate} {t.rate}",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="#666")
        ax.set_xlabel(t.rate_label)
        ax.set_ylabel(label)
        ax.set_title(f"{inp.title}: {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, ncol=2)
        fig.tight_layout()
        fig.savefig(out / f"{stem}.png")
        with matplotlib.rc_context(svg_style):
            fig.savefig(out / f"{stem}.svg", metadata={"Date": None})
        paths += [out / f"{stem}.png", out / f"{stem}.svg"]
        plt.close(fig)
    return paths


def _fmt(v: float, spec: str, unit: str = "") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec) + unit


def _bd_cells(r: dict) -> list[str]:
    flag = " †" if r["warning"] else ""
    return [r["codec"], r["reference"], _fmt(r["bd_rate"], "+.2f", " %") + flag,
            _fmt(r["bd_psnr"], "+.3f", " dB"), _fmt(r["bd_rate_msssim"], "+.2f", " %"),
            f"{r['overlap']:.2f}"]


def _name(m) -> str:
    return m.label.split(" [")[0] if m else "n/a"


def bd_head(t: MetricTable) -> list[str]:
    return ["codec", "reference", f"BD-rate ({_name(t.primary)})", f"BD-{_name(t.primary)}",
            f"BD-rate ({_name(t.secondary)})", "overlap"]


def speed_head(t: MetricTable) -> list[str]:
    return ["codec", "points", f"{t.rate} range", "encode s/item", "decode s/item"]


def _speed_cells(r: dict) -> list[str]:
    return [r["codec"], str(r["points"]), r["bpp"], f"{r['encode_s']:.4f}", f"{r['decode_s']:.4f}"]


def _summary_lines(inp: ReportInput) -> list[str]:
    m = inp.meta
    env = m.get("environment", {})
    lines = [f"Dataset: `{m.get('data', '?')}` ({m.get('items', '?')} items). "
             f"BD interpolation: {inp.method}; negative BD-rate = fewer bits than the reference.",
             f"Measuring time: {m.get('seconds', 0) / 60:.1f} min of wall time over "
             f"{m.get('runs', 1)} run(s) with up to {m.get('workers', '?')} worker(s), "
             f"{m.get('points', '?')} points ({m.get('cached', 0)} reused from the cache by the "
             "last run); speed columns are per item with that many workers sharing the CPU.",
             f"Machine: {env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores; "
             f"{env.get('ffmpeg', '')}; date {env.get('date', '?')}."]
    return lines


def _notes(inp: ReportInput) -> list[tuple[str, str, dict[str, str]]]:
    """The report's lists of what was not measured: (heading, word, name -> why)."""
    return [(head, what, rows) for head, what, rows in
            (("Unavailable", "unavailable", inp.unavailable),
             ("Skipped items", "skipped", inp.skipped)) if rows]


def markdown(inp: ReportInput, bd: list[dict], speed: list[dict]) -> str:
    def table(head, rows):
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(r) + " |" for r in rows])

    out = [f"# {inp.title}", "", *[f"{s}  " for s in _summary_lines(inp)], "",
           "## BD-rate", "", table(bd_head(inp.table), [_bd_cells(r) for r in bd]), ""]
    warned = [r for r in bd if r["warning"]]
    if warned:
        out += ["† " + "; ".join(sorted({f"{r['codec']} vs {r['reference']}: {r['warning']}"
                                         for r in warned})), ""]
    out += ["## Speed and range", "", table(speed_head(inp.table),
                                            [_speed_cells(r) for r in speed]), ""]
    for head, what, rows in _notes(inp):
        out += [f"## {head}", ""] + [f"- **{k}**: {what} — {v}" for k, v in rows.items()] + [""]
    out += ["## Rate–distortion", ""]
    out += [line for m in inp.table.plots for line in (f"![{_name(m)}]({m.stem}.svg)", "")]
    out += ["## Codecs", ""] + [f"- **{r['codec']}**: {r['description']}" for r in speed]
    out += [f"- **{k}** (published): {v.get('description', '')}" for k, v in inp.published.items()]
    return "\n".join(out) + "\n"


def html_report(inp: ReportInput, bd: list[dict], speed: list[dict], out: Path) -> str:
    e = html.escape

    def table(head, rows):
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    svgs = []
    for m in inp.table.plots:
        svg = (out / f"{m.stem}.svg").read_text()
        svgs.append(f'<figure>{svg[svg.index("<svg"):]}<figcaption>{e(m.label)} vs '
                    f"{e(inp.table.rate)}</figcaption></figure>")
    warned = sorted({f"{r['codec']} vs {r['reference']}: {r['warning']}" for r in bd
                     if r["warning"]})
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(inp.title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}",
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}",
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}",
        "td:first-child,th:first-child,td:nth-child(2){text-align:left}",
        "thead{background:#f3f3f3}figure{margin:1em 0}svg{max-width:100%;height:auto}",
        ".warn{color:#a15c00}", "</style></head><body>",
        f"<h1>{e(inp.title)}</h1>",
        *[f"<p>{e(s)}</p>" for s in _summary_lines(inp)],
        "<h2>BD-rate</h2>", table(bd_head(inp.table), [_bd_cells(r) for r in bd]),
        *[f'<p class="warn">† {e(w)}</p>' for w in warned],
        "<h2>Speed and range</h2>", table(speed_head(inp.table), [_speed_cells(r) for r in speed]),
    ]
    for head, what, rows in _notes(inp):
        parts += [f"<h2>{head}</h2><ul>"] + [
            f"<li><b>{e(k)}</b>: {what} — {e(v)}</li>" for k, v in rows.items()] + ["</ul>"]
    parts += ["<h2>Rate–distortion</h2>", *svgs, "<h2>Codecs</h2><ul>"]
    parts += [f"<li><b>{e(r['codec'])}</b>: {e(r['description'])}</li>" for r in speed]
    parts += [f"<li><b>{e(k)}</b> (published): {e(v.get('description', ''))}</li>"
              for k, v in inp.published.items()]
    parts += ["</ul></body></html>"]
    return "\n".join(parts) + "\n"


def write_report(inp: ReportInput, out: str | Path) -> dict[str, Path]:
    """Write plots, ``report.md``, ``report.html`` and ``bd.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bd, speed = bd_table(inp), speed_table(inp)
    plots = plot(inp, out)
    paths = {"markdown": out / "report.md", "html": out / "report.html", "bd": out / "bd.json"}
    paths["markdown"].write_text(markdown(inp, bd, speed))
    paths["html"].write_text(html_report(inp, bd, speed, out))
    paths["bd"].write_text(json.dumps({"method": inp.method, "anchor": inp.anchor, "rows": bd,
                                       "unavailable": inp.unavailable,
                                       "skipped": inp.skipped, "meta": inp.meta},
                                      indent=1, default=str))
    return {**paths, **{p.name: p for p in plots}}
