"""Self-contained HTML pages: one per run (``report.html``) and one per comparison.

Every picture is embedded as a data URI, so a page is one file a person can open or send.
Pages are written through a temporary file: a failure never replaces an earlier good page.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from sbvae.config import Config, build_config
from sbvae.data import GroundTruthDataset, build_dataset
from sbvae.errors import CheckpointError, ConfigError, UserError
from sbvae.evaluation.fidelity import fidelity_keys, fidelity_table
from sbvae.training.device import select_device
from sbvae.training.run_folder import (
    FIGURE_FILES,
    RunPaths,
    atomic_write_bytes,
    load_model,
    read_config_text,
    read_metrics,
    read_scores,
)
from sbvae.viz.curves import curves_figure
from sbvae.viz.geometry import factor_plane, geometry_figure, geometry_panel
from sbvae.viz.run_figures import NEED_FACTORS, check_factors

CAPTIONS = {
    "geometry": "Latent-space geometry: lines in the plane of two factors, and where the model puts them.",
    "traversals": "Latent traversals: each row moves one latent around an input's posterior mean.",
    "traversal_gif": "All latents moving at once, for several inputs.",
    "reconstructions": "Validation inputs over their reconstructions.",
    "prior_samples": "Samples from the prior.",
    "kl": "KL per latent (inactive latents in grey).",
    "curves": "Training curves (train solid, validation dashed), MIG and fidelity.",
    "data": "The data: one factor at a time.",
}
STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;image-rendering:pixelated}
figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}pre{background:#f7f7f7;padding:1em;overflow-x:auto}
.missing{color:#a00}"""


def _data_uri(path: Path) -> str:
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _figure(path: Path, caption: str) -> str:
    return (
        f'<figure><img src="{_data_uri(path)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _page(title: str, body: list[str]) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(body)}</body></html>"
    ).encode()


FIDELITY_NOTE = (
    "<p>Fidelity: a probe network trained on ground-truth images reads each factor from the "
    "reconstructions of fresh samples (posterior means decoded), and from the same samples' "
    "ground-truth images (control: what the probe reads at all). Accuracy for a named category, "
    "R<sup>2</sup> otherwise (an angle as its cosine and sine); chance is the best constant answer.</p>"
)


def score_rows(result: dict[str, Any]) -> dict[str, float]:
    """Every scalar in a metrics.json but the fidelity keys (their own table): the scores, then
    the test reconstruction."""
    scores = result.get("scores", {})
    fidelity = fidelity_keys(scores)
    rows = {k: v for k, v in scores.items() if isinstance(v, (int, float)) and k not in fidelity}
    rec = result.get("reconstruction", {})
    for key, name in (
        ("recon", "test recon NLL (nats/image)"),
        ("kl", "test KL (nats/image)"),
        ("sse", "test squared error/image"),
        ("active_latents", "active latents"),
    ):
        if isinstance(rec.get(key), (int, float)):
            rows[name] = rec[key]
    return rows


def fidelity_section(result: dict[str, Any]) -> list[str]:
    """The fidelity table of a metrics.json, a row per factor (nothing when it has none)."""
    table = fidelity_table(result.get("scores", {}))
    if not table:
        return []
    measures = (result.get("fidelity") or {}).get("measures", {})
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(measures.get(name, '')))}</td>"
        + "".join(f"<td>{_number(v)}</td>" for v in values)
        + "</tr>"
        for name, values in table.items()
    )
    header = "<tr><th>factor</th><th>measure</th><th>reconstructions</th><th>control</th><th>chance</th></tr>"
    return ["<h2>Fidelity of reconstructions</h2>", FIDELITY_NOTE, f"<table>{header}{rows}</table>"]


def objective_line(config_text: str) -> str:
    """The objective and its hyperparameters of a config.yaml (empty when it is not a valid config)."""
    try:
        summary = build_config(yaml.safe_load(config_text)).objective.summary()
    except (ConfigError, yaml.YAMLError, AttributeError, TypeError):
        return ""
    return f"<p>Objective: {html.escape(summary)}</p>"


def run_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.html``: config, metric table and every figure already drawn."""
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise CheckpointError(f"run folder not found: {paths.root}")
    if not paths.config.is_file():
        raise CheckpointError(f"{paths.root} is not a run folder (no config.yaml)")
    config_text = read_config_text(paths)
    body = [
        f"<p>Run folder <code>{html.escape(str(paths.root))}</code></p>",
        objective_line(config_text),
        "<h2>Scores</h2>",
    ]
    result = read_scores(paths.root)
    if result is None:
        body.append(
            f"<p class='missing'>metrics.json is missing: run <code>sbvae evaluate "
            f"{html.escape(str(paths.root))}</code> to measure this run.</p>"
        )
    else:
        body.append(
            f"<p>Step {result.get('step', '?')}, representation {result.get('representation', '?')}, "
            f"{result.get('num_train', '?')} training points, seed {result.get('seed', '?')}.</p>"
        )
        body.append(
            "<table><tr><th>metric</th><th>value</th></tr>"
            + "".join(f"<tr><td>{html.escape(k)}</td><td>{_number(v)}</td></tr>" for k, v in score_rows(result).items())
            + "</table>"
        )
        body += fidelity_section(result)
    body.append("<h2>Figures</h2>")
    missing = [name for name in FIGURE_FILES if not paths.figure(name).is_file()]
    if result is not None and result.get("factor_names") == []:  # a set of images: nothing to plot factors of
        missing = [name for name in missing if name not in NEED_FACTORS]
        body.append("<p>The data has no ground-truth factors: no disentanglement scores, geometry or data figure.</p>")
    body += [_figure(paths.figure(n), CAPTIONS[n]) for n in FIGURE_FILES if paths.figure(n).is_file()]
    if missing:
        body.append(
            f"<p class='missing'>Not drawn yet: {', '.join(missing)} "
            f"(<code>sbvae visualize {html.escape(str(paths.root))}</code>).</p>"
        )
    body.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    atomic_write_bytes(paths.report, lambda handle: handle.write(_page(f"sbvae run {paths.root.name}", body)))
    return paths.report


def _flat(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def group_runs(configs: dict[str, Config]) -> dict[str, list[str]]:
    """Runs whose configs differ only in ``train.seed`` share a group, labelled by what
    sets the groups apart (e.g. ``model.decoder=sbd``)."""
    flat = {run: _flat(c.to_dict()) for run, c in configs.items()}
    keys = sorted({k for f in flat.values() for k in f} - {"train.seed"})
    groups: dict[tuple, list[str]] = {}
    for run, f in flat.items():
        groups.setdefault(tuple(repr(f.get(k)) for k in keys), []).append(run)
    varying = [i for i, k in enumerate(keys) if len({g[i] for g in groups}) > 1]
    labels = {}
    for runs in groups.values():
        first = flat[runs[0]]
        label = ", ".join(f"{keys[i]}={first.get(keys[i])}" for i in varying) or "all runs"
        labels[label] = runs
    return labels


def _mean_spread(values: list[float]) -> str:
    if len(values) == 1:
        return _number(values[0])
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.4f} ± {std:.4f}"


def _shared(values: list[float]) -> str:
    """One number when every run gives it (to the table's 4 decimals), else mean ± std."""
    if not values:
        return ""
    return _number(values[0]) if len({f"{v:.4f}" for v in values}) == 1 else _mean_spread(values)


def compare_fidelity(results: dict[str, dict[str, Any]], groups: dict[str, list[str]]) -> list[str]:
    """The fidelity table of a comparison: a row per factor; chance and control (one number
    when the runs share them), then the score on the reconstructions of each group (mean ±
    std) and of each run."""
    tables = {name: fidelity_table(result.get("scores", {})) for name, result in results.items()}
    factors = list(dict.fromkeys(f for table in tables.values() for f in table))
    if not factors:
        return []
    header = "<tr><th>factor</th><th>chance</th><th>control</th>"
    header += "".join(f"<th>{html.escape(g)} (n={len(m)})</th>" for g, m in groups.items())
    header += "".join(f"<th>{html.escape(Path(name).name)}</th>" for name in results) + "</tr>"
    rows = []
    for factor in factors:
        having = [name for name in results if factor in tables[name]]
        cells = [_shared([tables[r][factor][2] for r in having]), _shared([tables[r][factor][1] for r in having])]
        for members in groups.values():
            values = [tables[r][factor][0] for r in members if factor in tables[r]]
            cells.append(_mean_spread(values) if values else "")
        cells += [_number(tables[name][factor][0]) if factor in tables[name] else "" for name in results]
        rows.append(f"<tr><td>{html.escape(factor)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ["<h2>Fidelity of reconstructions</h2>", FIDELITY_NOTE, f"<table>{header}{''.join(rows)}</table>"]


def compare_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    factors: Sequence[str] | None = None,
    device: str | torch.device | None = None,
) -> Path:
    """Write ``OUT/compare.html`` (with ``geometry.png`` and ``curves.png`` beside it): scores
    side by side (mean ± sample std over the runs of a group), latent geometry of every run side
    by side, training curves overlaid."""
    runs = [Path(r) for r in run_dirs]
    if len(runs) < 2:
        raise UserError("compare needs at least two run folders")
    if len({r.resolve() for r in runs}) != len(runs):
        raise UserError("a run folder is given twice")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    device = device if isinstance(device, torch.device) else select_device(device)
    loaded = {str(r): load_model(r, device) for r in runs}
    configs = {name: item[0] for name, item in loaded.items()}
    presets = {(c.data.preset, c.data.path, c.data.image_size) for c in configs.values()}
    first = build_dataset(next(iter(configs.values())).data)
    data = first if isinstance(first, GroundTruthDataset) else None  # a set of images has no factors
    plane_names = check_factors(data, factors) if data is not None else None
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(configs)
    results = {name: read_scores(Path(name)) or {} for name in configs}
    scores = {name: score_rows(results[name]) for name in configs}
    metric_names = list(dict.fromkeys(k for s in scores.values() for k in s))

    body = [
        "<h2>Runs</h2><table><tr><th>group</th><th>objective</th><th>runs</th></tr>"
        + "".join(
            f"<tr><td>{html.escape(label)}</td><td>{html.escape(configs[members[0]].objective.summary())}</td>"
            f"<td>{html.escape(', '.join(members))}</td></tr>"
            for label, members in groups.items()
        )
        + "</table>"
    ]
    body.append("<h2>Scores</h2>")
    no_scores = [name for name in configs if not scores[name]]
    if no_scores:
        body.append(
            f"<p class='missing'>metrics.json is missing for {html.escape(', '.join(no_scores))} "
            "(run <code>sbvae evaluate RUN</code>).</p>"
        )
    header = "".join(f"<th>{html.escape(g)} (n={len(m)})</th>" for g, m in groups.items())
    header += "".join(f"<th>{html.escape(Path(name).name)}</th>" for name in configs)
    rows = []
    for metric in metric_names:
        cells = [
            _mean_spread([scores[r][metric] for r in members if metric in scores[r]])
            if any(metric in scores[r] for r in members)
            else ""
            for members in groups.values()
        ]
        cells += [_number(scores[name][metric]) if metric in scores[name] else "" for name in configs]
        rows.append(f"<tr><td>{html.escape(metric)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    body.append(f"<table><tr><th>metric</th>{header}</tr>{''.join(rows)}</table>")
    body += compare_fidelity(results, groups)
    if data is None:
        body.append("<p class='missing'>The runs' data has no factors, so there is no latent geometry.</p>")
    elif len(presets) == 1:
        assert plane_names is not None
        plane = factor_plane(data, plane_names)
        panels = [geometry_panel(Path(name).name, model, data, plane, device) for name, (_, model, _) in loaded.items()]
        geometry_figure(panels, plane, data, out / "geometry.png")
        body.append("<h2>Latent geometry</h2>" + _figure(out / "geometry.png", CAPTIONS["geometry"]))
    else:
        body.append("<p class='missing'>The runs use different data, so their geometry is not compared.</p>")
    curves_figure({Path(name).name: read_metrics(RunPaths(Path(name)).metrics) for name in configs}, out / "curves.png")
    body.append("<h2>Training curves</h2>" + _figure(out / "curves.png", CAPTIONS["curves"]))
    configs_text = {Path(n).name: c.to_dict() for n, c in configs.items()}
    body.append(f"<h2>Configs</h2><pre>{html.escape(yaml.safe_dump(configs_text, sort_keys=False))}</pre>")
    page = out / "compare.html"
    atomic_write_bytes(page, lambda handle: handle.write(_page(f"sbvae comparison of {len(runs)} runs", body)))
    return page
