"""Reports: a study's tables and figures as Markdown (PNG files beside it) and self-contained HTML.

Decisions:

* One document model (a list of blocks: heading, text, table, figure) rendered twice: ``report.md``
  with ``figures/*.png`` beside it (for a repository or a paper's supplement) and ``report.html`` with
  every PNG embedded as base64 (one file to mail or archive).
* Tables are pandas DataFrames; Markdown tables are written here (pipe tables, 4 significant digits),
  so no extra dependency; the HTML uses ``DataFrame.to_html``. The full result rows also go to
  ``results.csv`` and ``results.parquet``.
* Figures are matplotlib ``Figure`` objects rendered with Agg (no display needed).
* Every report states the exact command that produced it, the date, the results database, the
  study's code version and the versions of Python, neurosim, torch, snntorch, lava-nc, brian2 ...
"""
from __future__ import annotations

import base64
import html
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from neurosim.errors import NeurosimError

MAX_MD_ROWS = 60


@dataclass
class Block:
    kind: str  # "h1" | "h2" | "h3" | "text" | "table" | "figure" | "code"
    text: str = ""
    frame: object = None  # DataFrame for tables
    png: bytes = b""
    filename: str = ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "figure"


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if 1e4 <= abs(v) < 1e9:  # counts (cycles, bytes) read best in full
            return f"{v:,.0f}"
        if v != 0 and (abs(v) >= 1e9 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:.4g}"
    try:  # numpy scalars
        return _fmt(v.item())
    except AttributeError:
        return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(df, max_rows: int = MAX_MD_ROWS) -> str:
    """A pipe table of ``df`` (numbers to 4 significant digits), truncated to ``max_rows``."""
    cols = [str(c) for c in df.columns]
    num = [df[c].dtype.kind in "iuf" for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---:" if n else ":---" for n in num) + "|"]
    for row in df.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    if len(df) > max_rows:
        lines.append(f"\n*{len(df) - max_rows} more rows in the CSV/Parquet files.*")
    return "\n".join(lines)


def _html_table(df, max_rows: int = 500) -> str:
    d = df.head(max_rows)
    return d.to_html(index=False, border=0, classes="t", na_rep="",
                     formatters={c: _fmt for c in d.columns}, escape=True)


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "text":
            out.append(b.text)
        elif b.kind == "code":
            out.append("```\n" + b.text + "\n```")
        elif b.kind == "table":
            out.append(markdown_table(b.frame))
        elif b.kind == "figure":
            out.append(f"![{b.text}](figures/{b.filename})")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table.t{border-collapse:collapse;font-size:12px;margin:1em 0}table.t td,table.t th{padding:2px 8px;
border-bottom:1px solid #ddd;text-align:right}table.t th{background:#f4f4f4}pre{background:#f6f6f6;
padding:8px;overflow-x:auto}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}"""


def _inline_md(text: str) -> str:
    """The little Markdown our text blocks use: `code`, **bold**, *italic*, list items."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"\*([^*]+)\*", r"<i>\1</i>", t)
    lines = t.split("\n")
    if all(l.startswith("- ") for l in lines if l):
        return "<ul>" + "".join(f"<li>{l[2:]}</li>" for l in lines if l) + "</ul>"
    return "<p>" + "<br>".join(lines) + "</p>"


def render_html(blocks: Sequence[Block], title: str) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            text = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(b.text))
            out.append(f"<{b.kind}>{text}</{b.kind}>")
        elif b.kind == "text":
            out.append(_inline_md(b.text))
        elif b.kind == "code":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "table":
            out.append(_html_table(b.frame))
        elif b.kind == "figure":
            data = base64.b64encode(b.png).decode()
            out.append(f"<figure><img alt='{html.escape(b.text)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{html.escape(b.text)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def write(blocks: Sequence[Block], out_dir: str | Path, title: str) -> Path:
    """Write ``report.md`` (+ ``figures/``) and ``report.html`` under ``out_dir``; returns the .md path."""
    out = Path(out_dir)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NeurosimError(f"cannot write the report under {out}: {e}") from None
    for b in blocks:
        if b.kind == "figure":
            (out / "figures" / b.filename).write_bytes(b.png)
    md = out / "report.md"
    md.write_text(render_markdown(blocks))
    (out / "report.html").write_text(render_html(blocks, title))
    return md


# ---- a study's blocks ------------------------------------------------------------------------------

def header_blocks(title: str, command: str, versions: dict, facts: dict) -> list[Block]:
    import pandas as pd

    lines = [f"- **Command:** `{command}`", f"- **Generated:** {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    lines += [f"- **{k}:** {v}" for k, v in facts.items()]
    return [Block("h1", title), Block("text", "\n".join(lines)),
            Block("table", frame=pd.DataFrame([versions]))]


def study_blocks(study, df, *, level: int = 2, failures: Sequence[dict] = (), csv_name: str | None = None) -> list[Block]:
    """Tables, figures and (the head of) all rows of one study's results."""
    from studies.plots import png_bytes

    h, hh = f"h{level}", f"h{min(level + 1, 3)}"
    blocks = [Block(h, f"Study `{study.name}`"), Block("text", study.description)]
    doc = (sys.modules[study.cell.__module__].__doc__ or "").strip()
    if doc:
        blocks.append(Block("text", doc))
    if df.empty:
        blocks.append(Block("text", "*No results stored for this study's current code version.*"))
        return blocks
    for title, fn in study.tables:
        blocks.append(Block(hh, title))
        blocks.append(_safe(lambda: Block("table", frame=fn(df)), title))
    for i, (title, fn) in enumerate(study.figures):
        def make(fn=fn, title=title, i=i):
            fig = fn(df)
            if fig is None:
                return Block("text", f"*{title}: nothing to plot for these results.*")
            return Block("figure", title, png=png_bytes(fig), filename=f"{study.name}_{i + 1}_{_slug(title)}.png")

        blocks.append(Block(hh, title))
        blocks.append(_safe(make, title))
    blocks.append(Block(hh, f"All results ({len(df)} rows)"))
    if csv_name:
        blocks.append(Block("text", f"Full table: `{csv_name}.csv` and `{csv_name}.parquet` beside this report."))
    blocks.append(Block("table", frame=df))
    if failures:
        blocks.append(Block(hh, f"Failed cells ({len(failures)})"))
        import pandas as pd

        blocks.append(Block("table", frame=pd.DataFrame(
            [{**f["params"], "error": f["error"][:200]} for f in failures])))
    return blocks


def _safe(make, title):
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - one broken figure must not lose the rest of a report
        print(f"neurosim report: {title!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return Block("text", f"**{title} could not be drawn:** `{type(e).__name__}: {e}`")


def export_frame(df, out_dir: Path, stem: str) -> None:
    """``stem.csv`` and ``stem.parquet`` under ``out_dir``."""
    write_frame(df, Path(out_dir) / f"{stem}.csv")
    write_frame(df, Path(out_dir) / f"{stem}.parquet")


def write_frame(df, path: Path) -> Path:
    """CSV or Parquet by suffix; for Parquet, object columns of mixed types are written as text."""
    from studies.store import export

    try:
        return export(df, path)
    except NeurosimError:
        raise
    except Exception:  # noqa: BLE001 - pyarrow refuses mixed-type object columns
        d = df.copy()
        for c in d.columns:
            if d[c].dtype == object:
                d[c] = d[c].map(lambda v: None if v is None else str(v))
        return export(d, path)


def study_frame(store, study, *, quick: bool | None = None, only=None):
    """The rows of ``study`` at its current code version; with ``quick``/``only``, just that sweep's cells.

    Columns: the sweep's axes in declaration order, then the cell's result fields.
    """
    from studies.registry import canonical_json

    cv = study.code_version()
    if quick is None and not only:  # every stored cell, in sweep order (quick-only cells after)
        order = [canonical_json(c) for c in study.cells() + study.cells(quick=True)]
        df = store.frame(study.name, cv, order=order)
    else:
        keys = [canonical_json(c) for c in study.cells(quick=bool(quick), only=only)]
        df = store.frame(study.name, cv, keys=keys, order=keys)
    axes = [a for a in study.sweep.axes if a in df.columns]
    return df[axes + [c for c in df.columns if c not in axes]]


def report(name: str, *, db=None, out: str | Path | None = None, quick: bool | None = None, only=None,
           modules: Sequence[str] = (), command: str | None = None) -> Path:
    """Write the report of study ``name`` from the store; returns the path of ``report.md``."""
    from studies.registry import get, load_module
    from studies.runner import command_line, versions
    from studies.store import Store

    for ref in modules:
        load_module(ref)
    s = get(name, modules)
    out = Path(out) if out is not None else Path("runs") / name
    with Store(db, create=False) as store:
        df = study_frame(store, s, quick=quick, only=only)
        failures = [f for f in store.failures(s.name) if f["params"]]
        done = set(store.done_keys(s.name, s.code_version()))
        failures = [f for f in failures if _key(f["params"]) not in done]
        db_path = store.path
    if df.empty:
        raise NeurosimError(f"no results for study {name!r} (code version {s.code_version()}) in {db_path}; "
                        f"run `neurosim study run {name}{' --quick' if quick else ''}` first")
    out.mkdir(parents=True, exist_ok=True)
    export_frame(df, out, "results")
    facts = {"Study": f"`{s.name}`", "Code version": s.code_version(), "Results database": f"`{db_path}`",
             "Rows": len(df), "Sweep": "quick" if quick else ("full" if quick is not None else "all stored cells")}
    blocks = header_blocks(f"neurosim study report: {s.name}", command or command_line(), versions(), facts)
    blocks += study_blocks(s, df, failures=failures, csv_name="results")
    return write(blocks, out, f"neurosim: {s.name}")


def _key(params: dict) -> str:
    from studies.registry import canonical_json

    return canonical_json(params)


def run_all_quick(out_dir: str | Path, *, db=None, workers: int | None = None, quiet: bool = True,
                  names: Sequence[str] | None = None) -> Path:
    """Run every registered study's ``--quick`` sweep and write one combined report; returns its path.

    Studies whose dependencies are not installed are listed in the report with the reason instead.
    Results go to ``db`` (default: ``<out_dir>/results.sqlite``), so a re-run resumes.
    """
    import pandas as pd

    from studies.registry import get, names as study_names
    from studies.runner import Executor, run, versions
    from studies.store import Store

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    db = Path(db) if db is not None else out / "results.sqlite"
    t0 = time.perf_counter()
    body, summary = [], []
    pool = Executor(workers, None, 10.0, "", n_cells=1 << 30)  # one pool of warm workers for every study
    with pool:
        for name in (names if names is not None else study_names()):
            s = get(name)
            why = s.missing()
            if why:
                summary.append(dict(study=name, cells=0, ran=0, stored=0, failed=0, seconds=0.0,
                                    status=f"skipped: {why}"))
                continue
            r = run(s, quick=True, db=db, quiet=quiet, command=f"studies.run_all_quick({str(out_dir)!r})",
                    executor=pool)
            with Store(db) as store:
                df = study_frame(store, s, quick=True)
                failures = store.failures(s.name, r.run_id) if r.run_id else []
            export_frame(df, out, name)
            summary.append(dict(study=name, cells=r.n_cells, ran=r.n_done, stored=r.n_skipped, failed=r.n_failed,
                                seconds=round(r.elapsed_s, 1), status="ok" if not r.n_failed else "failures"))
            body += study_blocks(s, df, failures=failures, csv_name=name)
    pd.DataFrame(summary).to_csv(out / "summary.csv", index=False)

    facts = {"Sweeps": "the `--quick` sweep of every study", "Results database": f"`{db}`",
             "Wall time": f"{time.perf_counter() - t0:.1f} s"}
    blocks = header_blocks("neurosim: comparative studies (quick sweeps)", command_line_or(
        f"studies.run_all_quick({str(out_dir)!r})"), versions(), facts)
    blocks += [Block("h2", "Summary"), Block("table", frame=pd.DataFrame(summary))] + body
    return write(blocks, out, "neurosim studies")


def demo_step(out_dir: str | Path = Path("runs") / "demo"):
    """For ``neurosim demo``: :func:`run_all_quick` into ``out_dir``, then its summary as a DataFrame
    (one row per study, with the report's path in the ``report`` column)."""
    import pandas as pd

    path = run_all_quick(out_dir, quiet=False)
    return pd.read_csv(Path(path).parent / "summary.csv").assign(report=str(path))


def command_line_or(default: str) -> str:
    """The ``neurosim ...`` command that called us, or the Python call when a script did."""
    from studies.runner import command_line

    cmd = command_line()
    return f"{cmd}  (which called {default})" if cmd.startswith("neurosim") else f"python: {default}"
