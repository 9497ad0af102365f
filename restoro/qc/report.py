"""The QC report: ``qc/report.json`` and a static ``qc/report.html`` that opens from disk.

Summary, a sortable per-shot table (click a header; a few lines of inline JS), thumbnails and
worst-frame crops, metric plots along each title, deliverable checks, and with a second variant
side-by-side crops and a difference view.
"""

from __future__ import annotations

import html
import json
import shutil
from typing import TYPE_CHECKING, Any

from restoro.qc.collect import COLUMNS
from restoro.review_links import DEFAULT_BASE, shot_url

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from restoro.engine.store import Store
    from restoro.qc.collect import DeliverableRow, ShotRow

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td:first-child{border-left:4px solid #c62828}
tr.warn td:first-child{border-left:4px solid #ef8f00}
tr.pass td:first-child{border-left:4px solid #2e7d32}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;color:#fff;font-size:12px}
.fail .badge,.badge.fail{background:#c62828}.warn .badge,.badge.warn{background:#ef8f00}
.pass .badge,.badge.pass{background:#2e7d32}
.finding{margin:0 0 2px 0}.sev-error{color:#c62828}.sev-warning{color:#b26a00}
.sev-info{color:#666}
table.renditions{margin-top:4px;font-size:12px}
img.thumb{height:60px}img.crop{height:72px}img.plot{max-width:100%}
.summary span{margin-right:1.2em}
"""

_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = !th.classList.contains('sorted-asc');
    table.querySelectorAll('th').forEach(function (h) {
      h.classList.remove('sorted-asc', 'sorted-desc');
    });
    th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _copy(store: Store, digest: str | None, out: Path, rel: str) -> str | None:
    if digest is None:
        return None
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.blob_path(digest), dest)
    return rel


def _cell(value: Any, num: bool = False) -> str:
    v = "" if value is None else value
    cls = ' class="num"' if num else ""
    return f'<td{cls} data-v="{html.escape(str(v))}">{html.escape(str(v))}</td>'


def _findings_html(fs: list[dict[str, Any]]) -> str:
    return "".join(
        f'<p class="finding sev-{html.escape(f["severity"])}">{html.escape(f["check"])}: '
        f"{html.escape(f['message'])}</p>"
        for f in fs
    )


# Per-rendition figures shown in a deliverable's rendition table, in order.
_RENDITION_FIELDS = (
    "codec", "raster", "profile", "bit_depth", "bitrate", "frames", "duration", "channels",
    "av_diff_frames", "vmaf_mean", "vmaf_min", "vmaf_p5", "psnr",
)  # fmt: skip


def _deliverable_metrics(metrics: dict[str, Any]) -> str:
    """A deliverable's metrics: the flat ones as text, renditions and caption tracks as tables."""
    e = html.escape
    flat = ", ".join(
        f"{k}: {v}" for k, v in metrics.items() if v is not None and not isinstance(v, dict)
    )
    out = [e(flat)]
    rends = metrics.get("renditions") or {}
    if rends:
        cols = [f for f in _RENDITION_FIELDS if any(f in r for r in rends.values())]
        out.append("<table class='renditions'><thead><tr><th>rendition</th>")
        out += [f"<th>{e(c)}</th>" for c in cols]
        out.append("</tr></thead><tbody>")
        for rid, r in rends.items():
            out.append(f"<tr>{_cell(rid)}" + "".join(_cell(r.get(c), num=True) for c in cols))
            out.append("</tr>")
        out.append("</tbody></table>")
    for label, c in (metrics.get("captions") or {}).items():
        issues = ", ".join(f"{k} {v}" for k, v in sorted((c.get("issues") or {}).items()))
        out.append(f"<br><small>{e(label)}: {c.get('cues', 0)} cues; {e(issues or 'no issues')}")
        out.append("</small>")
    return "".join(out)


def write_report(
    out: Path,
    store: Store,
    *,
    project: str,
    variant: str | None,
    shots: list[ShotRow],
    delivs: list[DeliverableRow],
    compare: tuple[str, dict[str, dict[str, Any]]] | None = None,
    review: Mapping[str, str] | None = None,
    review_base: str = DEFAULT_BASE,
) -> tuple[Path, Path]:
    """Write ``report.html``, ``report.json`` and the images under ``out``. Each shot links to
    its page on the review server at ``review_base`` (``restoro review``) and shows its review
    status from ``review`` (shot id → status; unreviewed when absent)."""
    from restoro.qc.plots import plot_title

    out.mkdir(parents=True, exist_ok=True)
    for r in shots:
        base = _safe(r.id)
        for kind, digest in (("thumb", r.thumb), ("worst", r.worst)):
            rel = _copy(store, digest, out, f"img/{base}-{kind}.png")
            if rel:
                r.images[kind] = rel
    plots: dict[str, str] = {}
    (out / "img").mkdir(exist_ok=True)
    for title in sorted({r.title for r in shots}):
        rows = [r for r in shots if r.title == title]
        plot_title(title, rows, out / "img" / f"plot-{_safe(title)}.png")
        plots[title] = f"img/plot-{_safe(title)}.png"
    counts = {s: sum(1 for r in shots if r.status == s) for s in ("fail", "warn", "pass")}
    dfail = sum(1 for d in delivs if d.status == "fail")
    data: dict[str, Any] = {
        "project": project,
        "variant": variant,
        "summary": {"shots": len(shots), **counts, "deliverables_failing": dfail},
        "shots": [
            {
                **r.to_json(),
                "review": {
                    "status": (review or {}).get(r.id, "unreviewed"),
                    "url": shot_url(r.id, review_base),
                },
            }
            for r in shots
        ],
        "deliverables": [d.to_json() for d in delivs],
        "plots": plots,
    }
    if compare is not None:
        data["compare"] = {"variant": compare[0], "shots": compare[1]}
    json_path = out / "report.json"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(_html(data, shots, delivs, plots, compare), encoding="utf-8")
    return html_path, json_path


def _html(
    data: dict[str, Any],
    shots: list[ShotRow],
    delivs: list[DeliverableRow],
    plots: dict[str, str],
    compare: tuple[str, dict[str, dict[str, Any]]] | None,
) -> str:
    e = html.escape
    s = data["summary"]
    name = f"{data['project']}" + (f" — variant {data['variant']}" if data["variant"] else "")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>QC report: {e(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>QC report: {e(name)}</h1>",
        "<p class='summary'>"
        f"<span><b>{s['shots']}</b> shots</span>"
        f"<span class='badge fail'>{s['fail']} failing</span> "
        f"<span class='badge warn'>{s['warn']} with warnings</span> "
        f"<span class='badge pass'>{s['pass']} passing</span>"
        f"<span>{s['deliverables_failing']} of {len(delivs)} deliverables failing</span></p>",
        "<h2>Shots</h2><table class='sortable' id='shots'><thead><tr>",
        "<th>status</th><th>shot</th><th>review</th><th>timecode</th><th>frames</th><th>tags</th>"
        "<th>pipeline</th>",
        *[f"<th>{e(label)}</th>" for _c, _m, label in COLUMNS],
        "<th>findings</th><th>thumbnail</th><th>worst frame: source | output | diff</th>",
        "</tr></thead><tbody>",
    ]
    reviews = {row["id"]: row["review"] for row in data["shots"]}
    for r in shots:
        rv = reviews[r.id]
        cells = [
            f'<td data-v="{_STATUS_ORDER[r.status]}"><span class="badge">{r.status}</span></td>',
            _cell(r.id),
            f'<td data-v="{e(rv["status"])}"><a class="review" href="{e(rv["url"])}">'
            f"{e(rv['status'])}</a></td>",
            _cell(r.timecode),
            _cell(f"{r.start}-{r.end - 1}"),
            _cell(", ".join(r.tags)),
            f'<td data-v="{e(r.pipeline)}">{e(r.pipeline)}<br><small>'
            f"{e(' → '.join(r.stages))}</small></td>",
            *[_cell(r.metrics.get(c, {}).get(m), num=True) for c, m, _l in COLUMNS],
            f'<td data-v="{len(r.findings)}">{_findings_html(r.findings)}</td>',
            "<td>"
            + (
                f'<img class="thumb" src="{e(r.images["thumb"])}" alt="">'
                if "thumb" in r.images
                else ""
            )
            + "</td><td>"
            + (
                f'<img class="crop" src="{e(r.images["worst"])}" alt="frame {r.worst_frame}">'
                f"<br><small>frame {r.worst_frame}</small>"
                if "worst" in r.images
                else ""
            )
            + "</td>",
        ]
        parts.append(f'<tr class="{r.status}">' + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Metrics along the timeline</h2>")
    for title, rel in plots.items():
        parts.append(
            f'<h3>{e(title)}</h3><img class="plot" src="{e(rel)}" alt="plots of {e(title)}">'
        )
    if delivs:
        parts.append("<h2>Deliverables</h2><table><thead><tr><th>status</th><th>deliverable</th>")
        parts.append("<th>metrics</th><th>findings</th></tr></thead><tbody>")
        for d in delivs:
            parts.append(
                f'<tr class="{d.status}"><td><span class="badge">{d.status}</span></td>'
                f"<td>{e(d.id)}<br><small>{e(d.kind)}</small></td>"
                f"<td>{_deliverable_metrics(d.metrics)}</td>"
                f"<td>{_findings_html(d.findings)}</td></tr>"
            )
        parts.append("</tbody></table>")
    if compare is not None:
        other, rows = compare
        parts.append(
            f"<h2>Variants: {e(str(data['variant'] or 'default'))} against {e(other)}</h2>"
            "<table class='sortable'><thead><tr><th>shot</th><th>PSNR between variants</th>"
            "<th>VMAF between variants</th><th>VMAF min</th><th>frame</th>"
            "<th>A | B | difference ×4</th></tr></thead><tbody>"
        )
        for sid, c in rows.items():
            img = f'<img class="crop" src="{e(c["image"])}" alt="">' if c.get("image") else ""
            v = c.get("vmaf") or {}
            parts.append(
                f"<tr>{_cell(sid)}{_cell(c.get('psnr'), num=True)}"
                f"{_cell(v.get('mean'), num=True)}{_cell(v.get('min'), num=True)}"
                f"{_cell(c.get('frame'))}<td>{img}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(parts)
