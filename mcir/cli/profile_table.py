"""Format profiling results (:func:`mcir.cli.profiler.run_spec` dicts) as markdown tables and write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mcir.utils.atomic import atomic_write_text

Result = Dict[str, Any]


def _g(flops: Optional[float]) -> str:
    return "-" if flops is None else f"{flops / 1e9:.2f}"


def _mib(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def network_table(results: Sequence[Result], isolated: bool) -> str:
    """One row per model: params, input/output size, MACs and FLOPs, peak memory, median latency.

    Args:
        results: Profiling results.
        isolated: Whether each model ran in a fresh process (stated under the table).

    Returns:
        The markdown table and its notes.
    """
    head = ["Model", "Arch", "Params (M)", "Input (CxHxW)", "Output (HxW)", "GMACs", "GFLOPs", "Peak mem (MiB)",
            "Latency (ms)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [_cell(r["label"]), r["arch"], f"{r['params'] / 1e6:.3f}", "x".join(map(str, r["input"])),
               "x".join(map(str, r["output"])), _g(r["macs"]), _g(r["flops"]), _mib(r["peak_mib"]),
               f"{r['latency_ms']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    first = results[0] if results else {}
    notes = [
        f"Device: {first.get('device', '-')}; batch 1, inference mode, input padded to the arch's size multiple; "
        f"latency = median of {first.get('repeats', '?')} runs after {first.get('warmup', '?')} warm-up runs.",
        "FLOPs: torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions, attention; element-wise ops not "
        "counted), 2 FLOPs per multiply-add; GMACs = GFLOPs / 2.",
        f"Peak mem: {first.get('memory_method', '-')} during one forward, over what the process held before it "
        "(weights and input excluded); "
        + ("each measurement in a fresh process." if isolated else "all in one process (approximate)."),
    ]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def train_table(results: Sequence[Result], isolated: bool) -> str:
    """Extra cost of the +SPN training step over the plain step, one row per MCIRModel option file.

    Args:
        results: Profiling results (those without ``train`` are skipped).
        isolated: Whether each step ran in a fresh process.

    Returns:
        The markdown table and its notes, or ``""`` when no result has a training step.
    """
    rows = [r for r in results if r.get("train")]
    if not rows:
        return ""
    head = ["Model", "Batch x GT patch", "Plain step GFLOPs", "+SPN step GFLOPs", "Extra GFLOPs",
            "Plain peak (MiB)", "+SPN peak (MiB)", "Extra (MiB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: List[str] = []
    for r in rows:
        t = r["train"]
        plain, spn = t["plain"], t["spn"]
        known = plain["peak_mib"] is not None and spn["peak_mib"] is not None
        extra_mib = spn["peak_mib"] - plain["peak_mib"] if known else None
        lines.append("| " + " | ".join([
            _cell(r["label"]), f"{t['batch']} x {t['gt_size']}x{t['gt_size']}", _g(plain["flops"]), _g(spn["flops"]),
            _g(spn["flops"] - plain["flops"]), _mib(plain["peak_mib"]), _mib(spn["peak_mib"]), _mib(extra_mib),
        ]) + " |")
        notes += [f"{r['label']}: {n}" for n in t["notes"] if f"{r['label']}: {n}" not in notes]
    notes.insert(0, "GFLOPs: one optimizer step (forward, losses, backward; +SPN adds the negatives' forwards and "
                 "the VGG features of output and negatives). Peak: building the model (weights, EMA, negatives, "
                 "VGG) and two steps (optimizer state, activations, gradients), over the process before; "
                 + ("each in a fresh process." if isolated else "all in one process (approximate)."))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def render(results: Sequence[Result], isolated: bool) -> str:
    """Both tables as one markdown document.

    Args:
        results: Profiling results.
        isolated: Whether each model ran in a fresh process.

    Returns:
        Markdown text.
    """
    text = "## Inference\n\n" + network_table(results, isolated)
    train = train_table(results, isolated)
    return text + ("\n## Training step: +SPN vs plain\n\n" + train if train else "")


def write_profile(results: Sequence[Result], out_dir: Path, isolated: bool) -> Tuple[Path, Path]:
    """Write ``profile.md`` and ``profile.json`` into ``out_dir`` (created).

    Args:
        results: Profiling results.
        out_dir: Output folder.
        isolated: Whether each model ran in a fresh process.

    Returns:
        The two paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "profile.md", out_dir / "profile.json"
    atomic_write_text(render(results, isolated), md)
    atomic_write_text(json.dumps({"isolated": isolated, "models": list(results)}, indent=2) + "\n", js)
    return md, js
