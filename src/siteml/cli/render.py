"""How results look: tables whose columns are declared once as (key, header, formatter), the
model tree, headline metrics, and the plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from siteml.cli.app import console
from siteml.core import keys
from siteml.core.tables import cell
from siteml.pipelines.streams import camera_count


@dataclass(frozen=True)
class Column:
    """One column of a table: the row key (also the CSV / Markdown header), the header shown
    on a terminal, and how a value is shown there (default: ``cell``)."""

    key: str
    header: str
    show: Callable[[Any], str] = cell
    from_row: Callable[[dict[str, Any]], str] | None = None
    """Where one value does not say it all: the terminal cell from the whole row."""


def print_table(rows: list[dict[str, Any]], columns: Sequence[Column], **options: Any) -> None:
    """``rows`` as a rich table on stdout."""
    from rich.table import Table

    table = Table(*(c.header for c in columns), box=None, **options)
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*(column.from_row(row) if column.from_row else
                        column.show(row.get(column.key)) for column in columns))
    console().print(table)


def _yes(value: Any) -> str:
    return "yes" if value else ""


def _cameras(row: dict[str, Any]) -> str:
    """A row's camera count; ``>=32 (cap)`` where the search stopped at its limit."""
    count, capped = row.get("cameras"), bool(row.get("cameras_capped"))
    return "" if count is None else camera_count(count, capped) + (" (cap)" if capped else "")


COMPARE_COLUMNS = (
    Column("variant", "variant"), Column("version", "v"), Column("device", "device"),
    Column("host", "host"), Column("isa", "ISA"), Column("batch", "batch"),
    Column("size_mb", "MB"),
    Column("map50_95", "mAP50-95"),
    Column("delta_map50_95", "Δ pt", lambda d: "" if d is None else f"{d * 100:+.2f}"),
    Column("p50_ms", "p50 ms"), Column("p95_ms", "p95 ms"), Column("fps", "FPS"),
    Column("cameras", "cameras", from_row=_cameras), Column("camera_fps", "@ FPS"),
    Column("speedup", "speedup", lambda s: "" if s is None else f"{s:.2f}x"),
    Column("speedup_paired", "paired", _yes), Column("pareto", "Pareto", _yes),
    Column("steady", "steady", lambda s: {True: "yes", False: "NO"}.get(s, "")),
    Column("worst_class", "worst class (AP50)"),
    Column("warning", "warning", lambda w: "[bold red]WARNING[/bold red]" if w else ""),
)
COMPARE_EXPORT = (*COMPARE_COLUMNS, Column("cameras_capped", "capped"),
                  Column("benchmark_run_id", "run"))
"""What ``compare --csv / --md`` and the logged comparison hold: the table, whether the camera
count is the search's limit, and the run id."""


def _metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


RUNS_COLUMNS = (
    Column("site", "site"), Column("run_name", "run"), Column("type", "type"),
    Column("status", "status"), Column("metrics", "key metrics", _metrics),
    Column("source_model", "source model"), Column("model_version", "model version"),
)

HISTORY_COLUMNS = (
    Column("at", "when"), Column("model", "model"), Column("alias", "alias"),
    Column("from", "from"), Column("to", "to"), Column("by", "by"),
    Column("forced", "forced", _yes),
)

STALE_COLUMNS = (
    Column("site", "site"), Column("run_name", "run"), Column("run_id", "run id"),
    Column("host", "host"), Column("pid", "pid"), Column("last_seen", "last heartbeat"),
    Column("reason", "why stale"), Column("reaped", "reaped", _yes),
)

BATCH_COLUMNS = (
    Column("file", "scenario"), Column("run_name", "run"), Column("status", "status"),
    Column("duration_s", "s"), Column("model_version", "model version"),
    Column("detail", "detail"),
)

PLAN_COLUMNS = (
    Column("order", "#"), Column("file", "scenario"), Column("run_name", "run"),
    Column("action", "action"), Column("produces", "registers"),
    Column("needs", "after", lambda needs: ", ".join(map(str, needs or []))),
)

ACCESS_COLUMNS = (Column("user", "user"), Column("customer", "customer"), Column("role", "role"))

HEADLINE_FORMATS: dict[str, Callable[[float], str]] = {
    keys.VAL_MAP50: "mAP50 {:.3f}".format, keys.VAL_MAP50_95: "mAP50-95 {:.3f}".format,
    keys.VARIANT_MAP50_95: "mAP50-95 {:.3f}".format,
    keys.DELTA_MAP50_95: lambda delta: f"({delta * 100:+.2f} pt)",
    keys.SOURCE_MAP50_95: "vs source {:.3f}".format,
    keys.SPEEDUP: "{:.2f}x vs PyTorch".format,
    keys.batch_metric(1, keys.LATENCY_P50): "p50 {:.2f} ms".format,
    keys.batch_metric(1, keys.FPS): "{:.0f} FPS".format,
    keys.ACCURACY_MAP50_95: "mAP50-95 {:.3f}".format,
    keys.batch_metric(1, keys.SPEEDUP_VS_BASELINE): "{:.2f}x vs baseline".format,
    keys.STREAMS_MAX_CAMERAS: "{:.0f} cameras".format, keys.STREAMS_TARGET_FPS: "@ {:g} FPS".format,
    keys.STREAMS_CAPPED: lambda capped: "(the search's limit: or more)" if capped else ""}


def headline(metrics: dict[str, Any]) -> str:
    """A version's headline metrics, e.g.
    ``mAP50-95 0.730  (-0.10 pt)  vs source 0.731  4.85x vs PyTorch``."""
    shown = [show(float(metrics[k])) for k, show in HEADLINE_FORMATS.items() if k in metrics]
    shown = [text for text in shown if text]
    shown += [f"{k}={v}" for k, v in sorted(metrics.items()) if k not in HEADLINE_FORMATS]
    return "  ".join(shown)


def print_model_tree(entries: list[dict[str, Any]]) -> None:
    """Registered models as site -> task -> variant -> versions with aliases and headlines."""
    from rich.tree import Tree

    root = Tree("registered models")
    sites: dict[str, Any] = {}
    tasks: dict[tuple[str, str], Any] = {}
    for entry in entries:
        site_node = sites.get(entry["site"]) or sites.setdefault(
            entry["site"], root.add(f"[bold]{entry['site']}[/bold]"))
        key = (entry["site"], entry["task"])
        task_node = tasks.get(key) or tasks.setdefault(key, site_node.add(entry["task"]))
        model_node = task_node.add(f"{entry['variant'] or 'base'}  [dim]{entry['name']}[/dim]")
        for version in entry["versions"]:
            aliases = " ".join(f"[cyan]@{a}[/cyan]" for a in version["aliases"])
            model_node.add(f"v{version['version']} {aliases} {headline(version['metrics'])}"
                           f"{_version_notes(version)}".rstrip())
    console().print(root)


def _version_notes(version: dict[str, Any]) -> str:
    """Worst class, gate, parent and warning of a version, for the model tree."""
    notes = [f"worst {version['worst_class']}" if version.get("worst_class") else "",
             {"passed": "gate passed", "refused": "[red]gate refused[/red]"}.get(
                 version.get("gate") or "", "[dim]no gate[/dim]") if "gate" in version else "",
             "[yellow]forced[/yellow]" if version.get("forced") else "",
             f"from {version['parent']}" if version.get("parent") else "",
             f"[bold red]WARNING: {version['warning']}[/bold red]" if version.get("warning")
             else ""]
    return "".join(f"  {note}" for note in notes if note)


def print_plan(result: dict[str, Any]) -> None:
    """The MLflow names a scenario produces, then its tags and params."""
    from rich.table import Table

    out = console()
    out.print(f"[bold]experiment[/bold]        {result['experiment_name']}")
    out.print(f"[bold]run[/bold]               {result['run_name']}")
    out.print(f"[bold]registered model[/bold]  {result['registered_model_name'] or '-'}")
    out.print(f"[bold]files[/bold]             {', '.join(result['files'])}")
    out.print("[bold]resolved scenario[/bold]")
    out.print(result["scenario_yaml"], markup=False, highlight=False)
    for title in ("tags", "params"):
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column(style="cyan", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in result[title].items():
            table.add_row(key, value)
        out.print(table)

FLEET_COLUMNS = (
    Column("site", "site"), Column("box", "box"), Column("task", "task"),
    Column("desired", "desired", from_row=lambda row: _model_version(
        row["desired_model"], row["desired"])),
    Column("serving", "serving", from_row=lambda row: _model_version(
        row["model"], row["serving"])),
    Column("age_s", "last report (s ago)"), Column("health", "health"),
    Column("cameras", "cameras"), Column("fps", "fps"),
    Column("lagging", "behind @champion", _yes),
)

DEPLOY_COLUMNS = (
    Column("box", "box"), Column("model", "model"), Column("version", "version"),
    Column("previous", "was"), Column("taken_from", "taken off"),
)


def _model_version(path: str | None, version: int | None) -> str:
    """``…/ppe__openvino_int8/3``, or ``-``."""
    return f"{path.rsplit('/', 1)[-1]}/{version}" if path and version is not None else "-"
