"""The benchmark suite's report: medians and ratios per case (`summarize`),
`results.md` (`markdown`) and `chart.svg` (`svg`) from the runs that
`benchmarks/run` measured. Kept apart from the running of cases: it reads
only the runs (a `results.json`'s "runs" and "meta"), never a process or
a server.
"""

import statistics


def summarize(results, session):
    """Median figures per (scale, group, case) and ratios to the group reference."""
    by = {}
    for r in results:
        by.setdefault((r["scale"], r["group"], r["case"]), []).append(r)
    rows = []
    for (sf, group, case), runs in by.items():
        ok = [r for r in runs if r["ok"]]
        if not ok:
            rows.append({"scale": sf, "group": group, "case": case, "tool": runs[0]["tool"], "ok": False,
                         "error": runs[0].get("error", ""), "note": runs[0]["note"]})
            continue
        med = lambda k: statistics.median(r.get(k, 0) or 0 for r in ok)
        wall = med("wall")
        rows.append({
            "scale": sf, "group": group, "case": case, "tool": ok[0]["tool"], "ok": True, "runs": len(ok),
            "wall": wall, "rows": ok[0]["rows"], "rows_per_s": ok[0]["rows"] / wall,
            "mb_per_s": ok[0]["in_bytes"] / 1e6 / wall, "client_cpu": med("client_cpu"),
            "client_peak_mb": max(r.get("client_peak_bytes", 0) for r in ok) / 2**20,
            "server_cpu": med("server_cpu"), "server_backend_peak_mb": max(r.get("server_peak_backend_bytes", 0) for r in ok) / 2**20,
            "note": ok[0]["note"], "files": ok[0].get("files"), "figures": ok[-1].get("figures"),
            "wal": ok[0].get("wal", True),
        })
    for sf in {r["scale"] for r in rows}:
        mine = [r for r in rows if r["scale"] == sf and r["ok"]]
        refs = {}
        for r in mine:
            if r["case"] == "psql \\copy csv":
                refs["psql"] = r["wall"]
            # The server reading the prebuilt file itself: one per group and WAL state.
            if r["tool"] == "postgres" and r["case"].startswith("binary ceiling"):
                refs[("ceiling", r["group"], r["wal"])] = r["wall"]
        for group in {r["group"] for r in mine if r["group"].startswith("files")}:
            ref = next((r["wall"] for r in mine if r["group"] == group and r["case"] == session), None)
            for r in mine:
                if r["group"] == group and ref:
                    r["vs_psql_session"] = r["wall"] / ref
        for group in {r["group"] for r in mine if r["group"] not in ("load", "wide") and not r["group"].startswith("files")}:
            peers = [r["wall"] for r in mine if r["group"] == group and r["tool"] != "ferry"]
            if peers:
                refs[group] = min(peers)
        for r in mine:
            if r["group"] in ("load", "wide"):
                r["vs_psql_copy"] = r["wall"] / refs["psql"] if "psql" in refs and r["group"] == "load" else None
                c = refs.get(("ceiling", r["group"], r.get("wal", True)))
                r["vs_binary_ceiling"] = r["wall"] / c if c else None
            elif r["group"] in refs:
                r["vs_fastest_peer"] = r["wall"] / refs[r["group"]]
    return rows


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(rows, meta, file_sets):
    out = [f"# ferry benchmark results — {meta['date']}, {meta['host']}", "",
           f"Machine: {meta['cpu']} ({meta['cores']} cores), {meta['memory_gb']} GB RAM, {meta['os']}. "
           f"PostgreSQL {meta['postgres']} on the same machine; settings: `{'; '.join(meta['pg_settings'].splitlines())}`. "
           f"{meta['ferry']} ({meta['build']} build). Medians of {meta['runs']} run(s), cases in alternation; "
           "input files in the page cache. CPU in seconds; client peak = the client process tree's peak RSS; "
           "server = the postmaster and all backends (CPU) and the busiest backend's private memory.", ""]
    if meta.get("merged"):
        out += [f"Merged from an earlier run of the suite: {meta['merged']}.", ""]
    for sf in sorted({r["scale"] for r in rows}):
        for group in ["load", "wide", "csv→parquet", "parquet→csv", "read back"]:
            g = [r for r in rows if r["scale"] == sf and r["group"] == group]
            if not g:
                continue
            g.sort(key=lambda r: r.get("wall", 1e9))
            out += [f"## SF {sf:g} — {group}", ""]
            if group in ("load", "wide"):
                out += ["× binary ceiling compares each case with the ceiling that treats WAL as it does: written "
                        "(the pre-created table) or skipped (a table created in the load's transaction, "
                        "`wal_level = minimal`). × psql \\copy is always against `\\copy` into a pre-created "
                        "table, which writes WAL.", "",
                        "| case | WAL | wall s | rows/s | MB/s in | × psql \\copy | × binary ceiling | client CPU | client peak MB | server CPU | backend peak MB | note |",
                        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            else:
                if group == "read back":
                    out += ["Not like for like: ferry's validate step streams its output batch by batch and compares "
                            "a digest with the conversion's; the peers only read (most materialise the whole table) "
                            "and compare nothing. The streamed pyarrow case is the closest in shape.", ""]
                out += ["| case | wall s | rows/s | MB/s in | × fastest peer | client CPU | client peak MB | server CPU | note |",
                        "|---|---|---|---|---|---|---|---|---|"]
            for r in g:
                if not r["ok"]:
                    out.append(f"| {r['case']} | failed: {r['error'][:120]} |")
                    continue
                name = f"**{r['case']}**" if r["tool"] == "ferry" else r["case"]
                if group in ("load", "wide"):
                    out.append(f"| {name} | {'written' if r.get('wal', True) else 'skipped'} | {fmt(r['wall'])} | "
                               f"{r['rows_per_s']/1e3:,.0f} k | {fmt(r['mb_per_s'],0)} | "
                               f"{fmt(r.get('vs_psql_copy'))} | {fmt(r.get('vs_binary_ceiling'))} | {fmt(r['client_cpu'],1)} | "
                               f"{fmt(r['client_peak_mb'],0)} | {fmt(r['server_cpu'],1)} | {fmt(r['server_backend_peak_mb'],0)} | {r['note']} |")
                else:
                    out.append(f"| {name} | {fmt(r['wall'])} | {r['rows_per_s']/1e3:,.0f} k | {fmt(r['mb_per_s'],0)} | "
                               f"{fmt(r.get('vs_fastest_peer'))} | {fmt(r['client_cpu'],1)} | {fmt(r['client_peak_mb'],0)} | "
                               f"{fmt(r.get('server_cpu'),1)} | {r['note']} |")
            for r in g:
                steps = (r.get("figures") or {}).get("steps") if r["ok"] else None
                if steps:
                    parts = [f"{k} {v['p50']:.2f} s" for k, v in steps.items()]
                    out += ["", f"Where *{r['case']}* spends its time (per step, from the job store, the "
                                f"last run): " + "; ".join(parts) + "."]
            out.append("")
    out += files_markdown(rows, file_sets)
    scales = sorted({r["scale"] for r in rows})
    if len(scales) > 1:
        pairs = list(zip(scales, scales[1:]))
        out += ["## Scaling (ferry)", "",
                "µs/row is wall time over rows. The marginal µs/row between two scale factors is the extra wall time "
                "over the extra rows, which leaves out what a run costs whatever its size (start-up, the pipeline "
                "filling and draining, the last write and fsync); *fixed s* is that cost, where the line through "
                "the two smallest scale factors meets zero rows (a negative one is within the noise of the runs).", "",
                "| case | " + " | ".join(f"SF {s:g} µs/row | SF {s:g} peak MB" for s in scales)
                + " | " + " | ".join(f"SF {a:g}→{b:g} marginal µs/row" for a, b in pairs) + " | fixed s |",
                "|---|" + "---|---|" * len(scales) + "---|" * len(pairs) + "---|"]
        for group, case in sorted({(r["group"], r["case"]) for r in rows if r["tool"] == "ferry" and r["ok"]}):
            cells, at = [], {}
            for s in scales:
                r = next((r for r in rows if r["scale"] == s and r["group"] == group and r["case"] == case and r["ok"]), None)
                cells += [fmt(r["wall"] / r["rows"] * 1e6, 3) if r else "–", fmt(r["client_peak_mb"], 0) if r else "–"]
                if r:
                    at[s] = r
            slopes = []
            for a, b in pairs:
                ra, rb = at.get(a), at.get(b)
                ok = ra and rb and rb["rows"] > ra["rows"]
                slopes.append((rb["wall"] - ra["wall"]) / (rb["rows"] - ra["rows"]) if ok else None)
                cells.append(fmt(slopes[-1] * 1e6, 3) if ok else "–")
            first = at.get(scales[0])
            cells.append(fmt(first["wall"] - slopes[0] * first["rows"], 3) if first and slopes[0] is not None else "–")
            out.append(f"| {group}: {case} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def files_markdown(rows, file_sets):
    """The many-files family: throughput against one psql session, per-file latency, and
    where a ferry job's time goes (its steps, from the job store)."""
    out = []
    order = [f"files {label}" for label, _, _ in file_sets]
    groups = sorted({r["group"] for r in rows if r["group"].startswith("files")},
                    key=lambda g: order.index(g) if g in order else len(order))
    for group in groups:
        g = sorted([r for r in rows if r["group"] == group], key=lambda r: r.get("wall", 1e9))
        files = next((r["files"] for r in g if r.get("files")), None)
        out += [f"## {group} ({files} files into one table)", "",
                "| case | wall s | files/s | × psql session | per-file latency p50 / p95 ms | client CPU | server CPU | note |",
                "|---|---|---|---|---|---|---|---|"]
        for r in g:
            if not r["ok"]:
                out.append(f"| {r['case']} | failed: {r['error'][:120]} |")
                continue
            f = r.get("figures") or {}
            lat = (f"{f['latency_p50'] * 1e3:.0f} / {f['latency_p95'] * 1e3:.0f}"
                   if f.get("latency_p50") is not None else "–")
            name = f"**{r['case']}**" if r["tool"] == "ferry" else r["case"]
            rate = files / r["wall"] if files else None
            out.append(f"| {name} | {fmt(r['wall'])} | {fmt(rate, 0 if rate and rate >= 10 else 2)} | "
                       f"{fmt(r.get('vs_psql_session'))} | {lat} | {fmt(r['client_cpu'], 1)} | "
                       f"{fmt(r['server_cpu'], 1)} | {r['note']} |")
        for r in g:
            f = r.get("figures") or {}
            if f.get("steps"):
                parts = [f"{k} {v['p50'] * 1e3:.1f} / {v['p95'] * 1e3:.1f}" for k, v in f["steps"].items()]
                out += ["", f"Where a ferry job's time goes (per step, p50 / p95 ms, from the job store; a job's "
                            f"latency also holds its job-store writes between steps): " + "; ".join(parts) + "."]
        out.append("")
    return out


def svg(rows):
    """Horizontal bars of rows/s per case, one panel per (scale, group); ferry in orange."""
    panels = []
    for sf in sorted({r["scale"] for r in rows}):
        for group in ["load", "wide", "csv→parquet", "parquet→csv", "read back"]:
            g = sorted([r for r in rows if r["scale"] == sf and r["group"] == group and r["ok"]], key=lambda r: -r["rows_per_s"])
            if g:
                panels.append((f"SF {sf:g} — {group} (rows/s)", g))
    width, bar, gap, left = 900, 18, 6, 330
    y, parts = 20, []
    for title, g in panels:
        parts.append(f'<text x="10" y="{y}" font-size="14" font-weight="bold">{esc(title)}</text>')
        y += 10
        top = max(r["rows_per_s"] for r in g)
        for r in g:
            w = (width - left - 90) * r["rows_per_s"] / top
            color = "#e8710a" if r["tool"] == "ferry" else "#5f7fa8"
            parts.append(f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">{esc(r["case"][:52])}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}"/>')
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="11">{r["rows_per_s"]/1e6:.2f} M</text>')
            y += bar + gap
        y += 24
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="sans-serif">'
            f'<rect width="100%" height="100%" fill="white"/>' + "".join(parts) + "</svg>\n")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
