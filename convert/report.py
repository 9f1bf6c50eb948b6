"""The conversion report: a table on the terminal, ``report.json`` for machines, ``report.md`` for people."""

from __future__ import annotations

import json
from pathlib import Path

from edge.files import write_bytes_atomic

_COLUMNS = ("variant", "size MB", "cos min", "cos mean", "val id", "EER", "EER thr", "threshold", "FRR@thr",
            "ms 1t", "ms 2t", "x Keras 1t", "x Keras 2t", "runtimes")


def _rows(report: dict) -> list[list[str]]:
    keras = report["keras"]
    k_lat = keras.get("latency_ms", {})
    rows = [["keras", "-", "1", "1", f"{keras['identified']}/{keras['probes']}", f"{keras['eer']:.1%}",
             f"{keras['eer_threshold']:.3f}", f"{keras['threshold']:.3f}", f"{keras['threshold_frr']:.1%}",
             *(f"{k_lat[t]['p50']:.1f}" if t in k_lat else "-" for t in ("1", "2")), "1.0", "1.0", "tensorflow"]]
    for v in report["variants"]:
        lat = v["latency_ms"]
        speed = [f"{k_lat[t]['p50'] / lat[t]['p50']:.2f}" if t in k_lat and t in lat else "-" for t in ("1", "2")]
        rows.append([
            v["name"], f"{v['size_bytes'] / 1e6:.1f}", f"{v['cosine_min']:.4f}", f"{v['cosine_mean']:.4f}",
            f"{v['identified']}/{v['probes']}", f"{v['eer']:.1%}", f"{v['eer_threshold']:.3f}",
            f"{v['threshold']:.3f}", f"{v['threshold_frr']:.1%}",
            *(f"{lat[t]['p50']:.1f}" if t in lat else "-" for t in ("1", "2")), *speed,
            ", ".join(v.get("runtimes", [])) or "none",
        ])
    return rows


def _runtime_notes(report: dict) -> list[str]:
    notes = []
    for runtime, info in report.get("runtimes", {}).items():
        failed = {m: why for m, why in info.get("models", {}).items() if why != "ok"}
        for model, why in failed.items():
            notes.append(f"{runtime} {info.get('version', '?')} cannot run {model}: {why}")
    return notes


def _liveness_lines(report: dict) -> list[str]:
    """The presentation-attack models: agreement with the ONNX originals, speed, the measured box correction."""
    live = report.get("liveness")
    if not live:
        return []
    c, a = live["box_correction"], live["agreement"]
    lines = [f"liveness: {m['name']} -> {m['file']}: max |p - onnx| {m['max_difference']:.1e}, "
             f"{m['median_ms_1_thread']:.2f} ms per crop (1 thread)" for m in live["models"]]
    lines.append(f"liveness: {a['crops']} real crops, fused max difference {a['fused_max_difference']:.1e}, "
                 f"{a['decisions_changed']} decisions changed; box correction from the face mesh on {c['faces']} "
                 f"faces: width x{c['width']}, height x{c['height']}, centre up {c['shift_up']} box heights; "
                 f"{live['live_share_of_photos']:.0%} of these web photos score live")
    return lines


def format_table(report: dict) -> str:
    """The report as an aligned plain-text table with its notes."""
    rows = [list(_COLUMNS), *_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    s = report["settings"]
    lines += ["", f"photos: {report['photos']['calibration']} calibration (train), {report['photos']['held_out']} "
              f"held out (val); detector {s['detector']} range, margin {s['margin']}, align {s['align']}; "
              f"threshold = open-set (each person left out in turn) with stranger acceptance <= {s['target_far']:g}; "
              f"FRR@thr = photos whose nearest same-person photo it rejects"]
    lines += _runtime_notes(report)
    lines += _liveness_lines(report)
    if "build" in report:
        b = report["build"]
        lines.append(f"build: {b['seconds']} s, peak RSS {b['peak_rss_mib']} MiB")
    if report.get("restored_from_cache"):
        lines.append(f"(restored from the build cache {report['restored_from_cache']}; measured {report['created']})")
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    rows = _rows(report)
    out = ["# facegate conversion report", "",
           f"Built {report['created']} on {report['machine']['arch']} with {report['machine']['cpus']} CPUs. "
           "Distances are L2 between unit-length encodings; `val id` is nearest-neighbour identification of "
           "the held-out photos against the calibration photos; EER and thresholds are over all photo pairs; "
           "latency is the median of one face, batch 1.", "",
           "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    notes = _runtime_notes(report)
    if notes:
        out += ["", "## Runtimes", ""] + [f"- {n}" for n in notes]
    live = _liveness_lines(report)
    if live:
        out += ["", "## Presentation-attack models", ""] + [f"- {line.removeprefix('liveness: ')}" for line in live]
    return "\n".join(out) + "\n"


def write_report(report: dict, folder: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``folder`` atomically."""
    json_path, md_path = folder / "report.json", folder / "report.md"
    write_bytes_atomic(json_path, (json.dumps(report, indent=2) + "\n").encode())
    write_bytes_atomic(md_path, format_markdown(report).encode())
    return json_path, md_path
