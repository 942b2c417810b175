"""The comparison's report: results.json, results.csv, results.md and the tradeoff plot (tradeoff.png)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from unisr.io import atomic_write_bytes, write_json_atomic

SCHEME_COLORS = {"content": "tab:blue", "search": "tab:orange", "rec": "tab:green", "joint": "tab:red", "random": "tab:gray"}
BASELINE_STYLES = {"popularity": ":", "bm25": "--", "dense": "-.", "sasrec": (0, (5, 1))}


def _row_label(row: dict) -> str:
    quantizer = "" if row["scheme"] == "random" else f" ({row['quantizer']})"
    return f"{row['scheme']}{quantizer}"


def _mean_std(stat: dict | None) -> str:
    """A seed statistic as "mean ± std" (the mean alone for one seed, a dash when missing)."""
    if stat is None:
        return "–"
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}" if stat["n"] > 1 else f"{stat['mean']:.4f}"


def _cutoff(metric: str) -> str:
    """The k of a metric name: "10" of "ndcg@10"."""
    return metric.split("@")[1]


def markdown_tables(results: dict) -> str:
    """Cells (mean ± std over seeds), baselines, kept shares and cold start, as markdown."""
    metric, k = results["metric"], _cutoff(results["metric"])
    names = (f"recall@{k}", f"ndcg@{k}")
    rows = results["aggregate"]
    seeds = sorted({seed for row in rows for seed in row["seeds"]})
    lines = [
        f"### {results['dataset']['name']}: semantic IDs × decoders ({results['split']} split, full ranking, "
        f"mean ± std over seeds {', '.join(map(str, seeds))})",
        "",
        f"| codes | decoder | rec R@{k} | rec N@{k} | search R@{k} | search N@{k} | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        values = [_mean_std(row["tasks"].get(task, {}).get("metrics", {}).get(name)) for task in ("rec", "search") for name in names]
        train = row["seconds"].get("train", {}).get("mean", 0.0)
        lines.append(f"| {_row_label(row)} | {row['decoder']} | " + " | ".join(values) + f" | {train:.0f} |")
    for name, baseline in results["baselines"].items():
        values = []
        for task in ("rec", "search"):
            metrics = baseline["results"].get(task, {}).get("metrics")
            values += [f"{metrics[n]:.4f}" if metrics else "–" for n in names]
        lines.append(f"| baseline: {name} | – | " + " | ".join(values) + f" | {baseline['seconds']:.0f} |")
    shares = results["kept_shares"]
    if shares:
        title = f"Share of the best single-task result kept ({metric}; reference: the best cell whose codes serve that task alone):"
        lines += ["", title, ""]
        lines += ["| codes | decoder | rec share | search share |", "|---|---|---|---|"]
        by_group: dict[tuple, dict[str, dict]] = {(row["scheme"], row["quantizer"], row["decoder"]): {} for row in rows}
        for share in shares:
            by_group.setdefault((share["scheme"], share["quantizer"], share["decoder"]), {})[share["task"]] = share
        for (scheme, quantizer, decoder), tasks in by_group.items():
            cells = [f"{tasks[t]['share']:.0%}" if t in tasks and not math.isnan(tasks[t]["share"]) else "–" for t in ("rec", "search")]
            lines.append(f"| {_row_label({'scheme': scheme, 'quantizer': quantizer})} | {decoder} | {cells[0]} | {cells[1]} |")
        references = sorted({(s["task"], s["reference_cell"], s["reference"]) for s in shares})
        lines.append("")
        lines.append("References: " + "; ".join(f"{task} {cell} = {value:.4f}" for task, cell, value in references) + ".")
    cold = _cold_start_lines(results, names)
    if cold:
        lines += ["", *cold]
    return "\n".join(lines) + "\n"


def _cold_start_lines(results: dict, names: tuple[str, str]) -> list[str]:
    rows = []
    for row in results["aggregate"]:
        for task in ("rec", "search"):
            breakdown = row["tasks"].get(task, {}).get("breakdown", {}).get("cold_start")
            if breakdown:
                rows.append((_row_label(row), row["decoder"], task, breakdown["requests"], [_mean_std(breakdown[n]) for n in names]))
    for name, baseline in results["baselines"].items():
        for task in ("rec", "search"):
            breakdown = baseline["results"].get(task, {}).get("breakdown", {}).get("cold_start")
            if breakdown:
                rows.append((f"baseline: {name}", "–", task, breakdown["requests"], [f"{breakdown[n]:.4f}" for n in names]))
    if not rows:
        return []
    lines = ["Cold-start items (held out of every training part; IDs assigned by the frozen tokenizer):", ""]
    lines += [f"| codes | decoder | task | requests | {names[0]} | {names[1]} |", "|---|---|---|---|---|---|"]
    lines += [f"| {label} | {decoder} | {task} | {count} | {values[0]} | {values[1]} |" for label, decoder, task, count, values in rows]
    return lines


def results_csv(results: dict) -> str:
    """One row per cell (seed) × task × metric group (all, head, torso, tail, cold_start)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    metric_names = sorted({name for cell in results["cells"] for r in cell["results"].values() for name in r["metrics"]})
    writer.writerow(["kind", "scheme", "quantizer", "decoder", "seed", "task", "group", "requests", *metric_names])
    for cell in results["cells"]:
        for task, result in cell["results"].items():
            groups = [("all", {"requests": result["requests"], **result["metrics"]}), *result["breakdown"].items()]
            for group, values in groups:
                metrics = [f"{values[name]:.6f}" for name in metric_names]
                key = ["cell", cell["scheme"], cell["quantizer"], cell["decoder"], cell["seed"], task, group]
                writer.writerow([*key, values["requests"], *metrics])
    for name, baseline in results["baselines"].items():
        for task, result in baseline["results"].items():
            groups = [("all", {"requests": result["requests"], **result["metrics"]}), *result["breakdown"].items()]
            for group, values in groups:
                metrics = [f"{values[n]:.6f}" if n in values else "" for n in metric_names]
                writer.writerow(["baseline", name, "", "", "", task, group, values["requests"], *metrics])
    return buffer.getvalue()


def tradeoff_points(results: dict) -> list[dict]:
    """One point per code scheme × decoder setting: the joint decoder, and the pair of single-task decoders."""
    metric = results["metric"]
    by_codes: dict[tuple[str, str], dict[str, dict]] = {}
    for row in results["aggregate"]:
        by_codes.setdefault((row["scheme"], row["quantizer"]), {})[row["decoder"]] = row
    points = []
    for (scheme, quantizer), decoders in by_codes.items():
        label = _row_label({"scheme": scheme, "quantizer": quantizer})
        settings = [("joint decoder", "o", decoders.get("joint"), decoders.get("joint"))]
        settings.append(("separate decoders", "s", decoders.get("rec"), decoders.get("search")))
        for setting, marker, rec_row, search_row in settings:
            if rec_row is None or search_row is None:
                continue
            x = rec_row["tasks"].get("rec", {}).get("metrics", {}).get(metric)
            y = search_row["tasks"].get("search", {}).get("metrics", {}).get(metric)
            if x is None or y is None:
                continue
            position = {"x": x["mean"], "y": y["mean"], "xerr": x["std"], "yerr": y["std"]}
            points.append({"label": f"{label}, {setting}", "scheme": scheme, "marker": marker, **position})
    return points


def tradeoff_plot(results: dict, path: Path) -> Path | None:
    """Recommendation vs search ``metric`` with error bars over seeds; baselines as reference lines."""
    points = tradeoff_points(results)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = results["metric"].replace("ndcg", "NDCG").replace("recall", "Recall")
    figure, axes = plt.subplots(figsize=(10, 6))
    for point in points:
        axes.errorbar(
            point["x"], point["y"], xerr=point["xerr"], yerr=point["yerr"], fmt=point["marker"], capsize=3, markersize=8,
            color=SCHEME_COLORS.get(point["scheme"], "black"), label=point["label"],
        )  # fmt: skip
    for name, baseline in results["baselines"].items():
        style = BASELINE_STYLES.get(name, "--")
        rec = baseline["results"].get("rec", {}).get("metrics", {}).get(results["metric"])
        search = baseline["results"].get("search", {}).get("metrics", {}).get(results["metric"])
        if rec is not None:
            axes.axvline(rec, color="black", linestyle=style, linewidth=1, alpha=0.6, label=f"{name} (rec)")
        if search is not None:
            axes.axhline(search, color="dimgray", linestyle=style, linewidth=1, alpha=0.6, label=f"{name} (search)")
    axes.set_xlabel(f"recommendation {metric}")
    axes.set_ylabel(f"search {metric}")
    axes.set_title(f"{results['dataset']['name']}: joint vs single-task semantic IDs ({results['split']} split)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_report(directory: Path, results: dict) -> tuple[str, Path | None]:
    """Write results.json, results.csv, results.md and tradeoff.png under ``directory``."""
    directory = Path(directory)
    write_json_atomic(directory / "results.json", results)
    atomic_write_bytes(directory / "results.csv", results_csv(results).encode("utf-8"))
    markdown = markdown_tables(results)
    atomic_write_bytes(directory / "results.md", markdown.encode("utf-8"))
    return markdown, tradeoff_plot(results, directory / "tradeoff.png")
