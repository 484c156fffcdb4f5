"""The tables and plots of `edgefer profile`: the paper's Tables 2-5 beside edgefer's measurements."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from edgefer.files import atomic_path, write_text

PAPER = Path(__file__).resolve().parent / "paper.json"   # ships inside the package


def _paper() -> dict:
    return json.loads(PAPER.read_text()) if PAPER.exists() else {}


def render_markdown(report: dict) -> str:
    m, paper = report["machine"], _paper().get("models", {})
    lines = [f"# edgefer profile ({m['date']})", "",
             f"Machine: {m['processor']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}.",
             f"Budget: {report['config']['epochs']} epoch(s) of {report['config']['train_images'] or 'all'} "
             f"training images, batch {report['config']['batch_size']}, sampling every {report['config']['interval']} s.",
             "", "## Table 3: layers and parameters", "",
             "| model | conv | pooling | dense | parameters | paper: parameters |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in report["models"].items():
        layers = e.get("layers") or {}
        lines.append(f"| {name} | {layers.get('conv_layers', '-')} | {layers.get('pooling_layers', '-')} | "
                     f"{layers.get('dense_layers', '-')} | {layers.get('parameters', 0):,} | "
                     f"{_fmt_int(paper.get(name, {}).get('parameters'))} |")
    lines += ["", "## Table 2: accuracy and loss (validation = PublicTest)", "",
              "| model | train acc | val acc | val loss | test acc (fresh process) | paper: test acc |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in report["models"].items():
        h = (e.get("history") or [{}])[-1]
        lines.append(f"| {name} | {_fmt(h.get('accuracy'))} | {_fmt(h.get('val_accuracy'))} | {_fmt(h.get('val_loss'))} | "
                     f"{_fmt((e.get('test') or {}).get('accuracy'))} | {_fmt(paper.get(name, {}).get('accuracy'))} |")
    for stage, title in (("train", "Table 4: hardware occupation while training"),
                         ("test", "Table 5: hardware occupation while testing")):
        lines += ["", f"## {title}", "",
                  "| model | wall s | CPU % (machine) mean / peak | CPU % per core mean / peak | user % | system % "
                  "| system-wide user % / sys % | MEM % peak | peak RSS MB | sampler overhead (% of a core) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, e in report["models"].items():
            s = (e.get("stages") or {}).get(stage)
            if not s:
                lines.append(f"| {name} | not run | | | | | | | | |")
                continue
            status = "" if s["returncode"] == 0 else f" (exit {s['returncode']})"
            lines.append(
                f"| {name}{status} | {s['wall_s']:.1f} | {s['cpu_pct_total']:.1f} / {_fmt(s['cpu_pct_peak'], 1)} | "
                f"{s['cpu_pct_core_total']:.1f} / {_fmt(s['cpu_pct_core_peak'], 1)} | {s['user_pct_total']:.1f} | "
                f"{s['sys_pct_total']:.1f} | {_fmt(s['sys_user_pct_mean'], 1)} / {_fmt(s['sys_sys_pct_mean'], 1)} | "
                f"{s['mem_pct_peak']:.2f} | {s['peak_rss_mb']:.0f} | {s['sampler_overhead_pct_core']:.2f} |")
    edge_rows = [(n, r, v) for n, e in report["models"].items() for r, v in (e.get("edge") or {}).get("runtimes", {}).items()]
    if edge_rows:
        cores = report["machine"]["cores"]
        lines += ["", "## For the edge: size, latency and memory per runtime", "",
                  f"| model | runtime | size KB | ms/face (1 thread) | faces/s (1 thread) | ms/face ({cores} threads) "
                  f"| faces/s ({cores} threads) | inference-only peak RSS MB | paper: weights KB |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, runtime, r in edge_rows:
            paper_kb = paper.get(name, {}).get("weights_kb") if runtime == "keras" else None
            lines.append(f"| {name} | {runtime} ({r.get('backend')}) | {_fmt(r.get('size_kb'), 1)} | "
                         f"{_fmt(r.get('ms_per_face_1t'), 3)} | {_fmt(r.get('faces_per_s_1t'), 0)} | "
                         f"{_fmt(r.get(f'ms_per_face_{cores}t'), 3)} | {_fmt(r.get(f'faces_per_s_{cores}t'), 0)} | "
                         f"{_fmt(r.get('peak_rss_mb_1t'), 0)} | {_fmt(paper_kb, 1)} |")
    if report.get("devices"):
        lines += ["", "## CPU vs GPU (the seed study's Table I)", "",
                  "| model | epochs | CPU s/epoch | CPU total s | CPU val acc | GPU | speedup |",
                  "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
        for row in report["devices"]:
            cpu = row.get("cpu") or {}
            gpu = row.get("gpu")
            gpu_text = gpu if isinstance(gpu, str) else (
                f"{gpu['s_per_epoch']} s/epoch, {gpu['train_seconds']} s, acc {_fmt(gpu['val_accuracy'])} ({gpu['backend']})"
                if gpu else "not asked")
            lines.append(f"| {row['model']} | {row['epochs']} | {_fmt(cpu.get('s_per_epoch'), 2)} | "
                         f"{_fmt(cpu.get('train_seconds'), 1)} | {_fmt(cpu.get('val_accuracy'))} | {gpu_text} | "
                         f"{_fmt(row.get('speedup'), 2)} |")
    lines += ["", "Definitions: CPU % (machine) = process CPU time / wall time / cores; per core: 100 = one core; "
              "user/system % = the process's user/system CPU time as a share of the machine; system-wide = all "
              "processes (psutil); MEM % = peak RSS / total memory. Means and peaks are over samples; "
              "totals come from the child's rusage. Paper columns: '-' where the paper's value is not in "
              "edgefer/profile/paper.json.", ""]
    return "\n".join(lines)


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_int(value) -> str:
    return "-" if value is None else f"{value:,}"


def write_csv_tables(report: dict, out: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "stage", "wall_s", "cpu_pct_total", "cpu_pct_core_total", "user_pct_total",
                     "sys_pct_total", "cpu_pct_peak", "mem_pct_peak", "peak_rss_mb", "returncode"])
    for name, e in report["models"].items():
        for stage, s in (e.get("stages") or {}).items():
            writer.writerow([name, stage, s["wall_s"], s["cpu_pct_total"], s["cpu_pct_core_total"], s["user_pct_total"],
                             s["sys_pct_total"], s["cpu_pct_peak"], s["mem_pct_peak"], s["peak_rss_mb"], s["returncode"]])
    write_text(out / "occupation.csv", buffer.getvalue())


def write_plots(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {n: e for n, e in report["models"].items() if e.get("layers")}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, e in models.items():
        accuracy = (e.get("test") or {}).get("accuracy")
        if accuracy is not None:
            ax.scatter(e["layers"]["parameters"], accuracy * 100, s=40)
            ax.annotate(name, (e["layers"]["parameters"], accuracy * 100), textcoords="offset points", xytext=(5, 5))
    ax.set(xscale="log", xlabel="parameters", ylabel="PublicTest accuracy (%)",
           title="parameters vs accuracy (profile budget)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "params_vs_accuracy.png") as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    for stage in ("train", "test"):
        fig, (cpu_ax, mem_ax) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
        for name in report["models"]:
            path = out / f"samples_{name}_{stage}.csv"
            if not path.exists():
                continue
            with open(path) as handle:
                rows = list(csv.DictReader(handle))
            t = [float(r["t"]) for r in rows]
            cpu_ax.plot(t, [float(r["cpu_pct_core"]) for r in rows], label=name)
            mem_ax.plot(t, [float(r["rss_mb"]) for r in rows], label=name)
        cpu_ax.set(xlabel="seconds", ylabel="CPU % (100 = one core)", title=f"CPU while {stage}ing")
        mem_ax.set(xlabel="seconds", ylabel="RSS MB", title=f"memory while {stage}ing")
        for ax in (cpu_ax, mem_ax):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:   # no stage measured (all failed): no legend, no warning
                ax.legend()
        fig.tight_layout()
        with atomic_path(out / f"occupation_{stage}.png") as temp:
            fig.savefig(temp, format="png")
        plt.close(fig)
