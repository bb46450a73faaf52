"""The cases `run` measures, side by side: each tool's command line for a load, a conversion,
a read back or a set of many small files, with what it checks after. Kept apart from the runner
so a case can be read (and changed) without the setup and reporting around it."""

import datetime
import json
import shutil
import time

from harness import DATA, PG_PORT, PG_URL, ROOT, say

LINEITEM_DDL = """CREATE TABLE {name} (
  l_orderkey bigint, l_partkey bigint, l_suppkey bigint, l_linenumber integer,
  l_quantity numeric(15,2), l_extendedprice numeric(15,2), l_discount numeric(15,2), l_tax numeric(15,2),
  l_returnflag char(1), l_linestatus char(1), l_shipdate date, l_commitdate date, l_receiptdate date,
  l_shipinstruct char(25), l_shipmode char(10), l_comment varchar(44){extra})"""
COLUMNS = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice",
           "l_discount", "l_tax", "l_returnflag", "l_linestatus", "l_shipdate", "l_commitdate",
           "l_receiptdate", "l_shipinstruct", "l_shipmode", "l_comment"]



class Case:
    def __init__(self, group, name, tool, cmd, setup=None, check=None, rows=None, in_bytes=None,
                 note="", server=True, env=None, prep=None, after=None, files=None, wal=True):
        self.group, self.name, self.tool, self.cmd = group, name, tool, cmd
        # wal=False: the rows skip WAL (a table created in the load's own
        # transaction under wal_level = minimal); such a case is compared with
        # the ceiling that skips WAL too, never with the one that writes it.
        self.wal = wal
        self.setup, self.check, self.rows, self.in_bytes = setup, check, rows, in_bytes
        self.note, self.server, self.env = note, server, env
        # prep(): before the timing (clear a work dir); after(): figures to keep from the run.
        self.prep, self.after, self.files = prep, after, files


# ---------------------------------------------------------------- many files

# (label, files, rows per file): about 50 bytes a row.
FILE_SETS = [("10 KB", 1000, 200), ("1 MB", 100, 20_000), ("64 MB", 8, 1_280_000)]
QUICK_FILE_SETS = [("10 KB", 100, 200), ("1 MB", 4, 20_000)]
FILES_DDL = "CREATE TABLE files (id bigint, name text, amount numeric(12,2), day date)"
FILES_LEDGER_DDL = ("CREATE TABLE files_ledger (input text PRIMARY KEY, rows bigint NOT NULL, "
                    "loaded_at timestamptz NOT NULL DEFAULT now())")
SESSION = "psql, one session, a transaction per file"


def prepare_files(n, rows):
    """n CSV files of `rows` rows each under DATA, generated once; and the psql
    scripts that load them (one session; one process per file)."""
    d = DATA / f"files-{n}x{rows}"
    if not d.is_dir() or len(list(d.glob("*.csv"))) != n:
        say(f"generating {n} files of {rows:,} rows")
        tmp = DATA / f"files-{n}x{rows}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        seed = 1
        for k in range(n):
            lines = ["id,name,amount,day"]
            for i in range(rows):
                seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
                lines.append(f"{k * rows + i},name {i} of file {k},{(seed >> 40) % 100000 / 100:.2f},"
                             f"2026-12-{1 + (seed >> 20) % 28:02d}")
            (tmp / f"f{k:05}.csv").write_text("\n".join(lines) + "\n")
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)
    files = sorted(d.glob("*.csv"))
    session, loop = d.with_suffix(".session.sql"), d.with_suffix(".per-file.sh")
    session.write_text("".join(
        f"BEGIN;\n\\copy files FROM '{f}' (FORMAT csv, HEADER)\n"
        f"INSERT INTO files_ledger (input, rows) VALUES ('{f}', {rows});\nCOMMIT;\n" for f in files))
    loop.write_text("set -e\n" + "".join(
        f"psql '{PG_URL}' -X -q -1 -v ON_ERROR_STOP=1 -c \"\\copy files FROM '{f}' (FORMAT csv, HEADER)\" "
        f"-c \"INSERT INTO files_ledger (input, rows) VALUES ('{f}', {rows})\"\n" for f in files))
    return {"dir": d, "files": files, "rows": n * rows, "bytes": sum(f.stat().st_size for f in files),
            "session": session, "loop": loop}


def job_figures(work):
    """Per-file latency and per-step seconds of the jobs in a ferry job store."""
    import sqlite3
    db = sqlite3.connect(work / "jobs.db")
    docs = [json.loads(r[0]) for r in db.execute("SELECT doc FROM jobs")]
    db.close()

    def ts(s):
        return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    latency, steps = [], {}
    for j in docs:
        recs = j.get("steps") or []
        ends = [r["finished_at"] for r in recs if r.get("finished_at")]
        starts = [r["started_at"] for r in recs if r.get("started_at")]
        if ends and starts:
            latency.append(ts(max(ends)) - ts(min(starts)))
        for r in recs:
            if r.get("seconds") is not None:
                steps.setdefault(r["step"], []).append(r["seconds"])

    def pct(v, q):
        v = sorted(v)
        return v[min(len(v) - 1, int(q * len(v)))] if v else None

    return {"jobs": len(docs), "latency_p50": pct(latency, 0.5), "latency_p95": pct(latency, 0.95),
            "steps": {k: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "sum": sum(v)} for k, v in steps.items()}}


def files_cases(ferry, workdir, quick):
    cases = []
    for label, n, rows in (QUICK_FILE_SETS if quick else FILE_SETS):
        f = prepare_files(n, rows)
        group = f"files {label}"
        setup = (f"DROP TABLE IF EXISTS files; {FILES_DDL}; DROP TABLE IF EXISTS files_ledger; {FILES_LEDGER_DDL}; "
                 "DO $$ BEGIN IF to_regclass('ferry.loads') IS NOT NULL THEN "
                 "DELETE FROM ferry.loads WHERE target = 'public.files'; END IF; END $$")
        count = ("SELECT count(*) FROM files", f["rows"])
        common = dict(setup=setup, check=count, rows=f["rows"], in_bytes=f["bytes"], files=n)
        cases.append(Case(group, SESSION, "psql",
                          ["psql", PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(f["session"])],
                          note="reference: COPY and a ledger row per file, each file its own transaction",
                          **common))
        cases.append(Case(group, "psql, a process per file (shell loop)", "psql", ["bash", str(f["loop"])],
                          note="what a shell script does: the same, a psql start and connection per file",
                          **common))
        work, out = workdir / f"watch-{n}" / "work", workdir / f"watch-{n}" / "output"

        def clear(work=work, out=out):
            # The last run's job store and outputs (13 000 files for 1 000
            # jobs) are moved aside, not deleted here: on ext4 without a
            # journal (this machine's root) an inode freed in the last ~30 s
            # is skipped one by one when the next file is created, so
            # deleting them just before the timed run slowed ferry's own
            # file creation (4.46 s against 4.11-4.18 s for the same build).
            # The trash goes with the work dir at the end of the suite.
            if work.parent.exists():
                trash = workdir / "trash"
                trash.mkdir(exist_ok=True)
                work.parent.rename(trash / f"{work.parent.name}-{time.monotonic_ns()}")
            work.mkdir(parents=True)

        cases.append(Case(group, "ferry watch --once --concurrency 4, default settings", "ferry",
                          [str(ferry), "watch", str(f["dir"]), "--once", "--concurrency", "4",
                           "--specs", str(ROOT / "benchmarks/specs"), "--work-dir", str(work),
                           "--output", str(out), "--database-url", PG_URL, "-q"],
                          note="a full job per file: job store, ledger, receipt, .sql + .pgcopy artifacts, "
                               "file.zip, upload, event",
                          prep=clear, after=lambda work=work: job_figures(work), **common))
    return cases


def load_cases(d, ferry, py, loader, workdir):
    csv, rows = d["csv"], d["rows"]
    ddl = LINEITEM_DDL.format(name="lineitem", extra="")
    fresh = f"DROP TABLE IF EXISTS lineitem; {ddl}"
    fresh_pk = "DROP TABLE IF EXISTS lineitem; " + LINEITEM_DDL.format(
        name="lineitem", extra=", PRIMARY KEY (l_orderkey, l_linenumber)")
    count = ("SELECT count(*) FROM lineitem", rows)
    cases = [
        Case("load", "server COPY csv", "postgres",
             ["psql", PG_URL, "-X", "-q", "-c", f"COPY lineitem FROM '{csv}' (FORMAT csv, DELIMITER '|')"],
             fresh, count, note="the server reads and parses the file; no client"),
        Case("load", "psql \\copy csv", "psql",
             ["psql", PG_URL, "-X", "-q", "-c", f"\\copy lineitem FROM '{csv}' (FORMAT csv, DELIMITER '|')"],
             fresh, count, note="reference"),
        Case("load", "psql \\copy csv, 2 concurrent streams", "psql",
             ["bash", "-c", " & ".join(
                 f"psql '{PG_URL}' -X -q -c \"\\copy lineitem FROM '{h}' (FORMAT csv, DELIMITER '|')\""
                 for h in d["halves"]) + "; wait"],
             fresh, count, note="the file split in two halves beforehand"),
        Case("load", "binary ceiling (prebuilt PGCOPY, 1 stream)", "postgres",
             ["psql", PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1"] + sum(
                 [["-c", f"COPY lineitem FROM '{p}' (FORMAT binary)"] for p in d["pgcopy"]], []),
             fresh, count, note="reference: the server ingesting pre-encoded binary"),
        # The same bytes streamed by a client: what one COPY stream costs the
        # server over the wire (socket reads in 8 kB) rather than from a file.
        Case("load", "binary ceiling over the wire (psql \\copy of the prebuilt PGCOPY, 1 stream)", "psql",
             ["psql", PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1"] + sum(
                 [["-c", f"\\copy lineitem FROM '{p}' (FORMAT binary)"] for p in d["pgcopy"]], []),
             fresh, count, note="the floor for any client sending one stream"),
        Case("load", "binary ceiling, table created in the same transaction + FREEZE", "postgres",
             ["psql", PG_URL, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-c", ddl] + sum(
                 [["-c", f"COPY lineitem FROM '{p}' (FORMAT binary, FREEZE)"] for p in d["pgcopy"]], []),
             "DROP TABLE IF EXISTS lineitem", count, note="reference for cases that skip WAL (wal_level = minimal)",
             wal=False),
    ]
    spec = str(ROOT / "benchmarks/specs/lineitem")
    base = [str(ferry), "load", "--dataset", spec, "--input", str(csv), "--database-url", PG_URL,
            "--work-dir", str(workdir), "--force", "-q"]
    # (label, flags, setup, note, whether the rows write WAL)
    for label, extra, setup, note, wal in [
        ("ferry append, 1 stream", ["--mode", "append", "--streams", "1", "--artifacts", "none"], fresh, "", True),
        ("ferry append, 1 stream, .sql + .pgcopy artifacts", ["--mode", "append", "--streams", "1", "--artifacts", "all"], fresh, "writes 2 artifact sets beside the load", True),
        ("ferry append, 2 streams", ["--mode", "append", "--streams", "2", "--artifacts", "none"], fresh, "two-phase commit: each stream COPYs into the target and prepares; receipt on", True),
        ("ferry append, 2 streams, --verify off", ["--mode", "append", "--streams", "2", "--artifacts", "none", "--verify", "off"], fresh, "two-phase commit, no receipt (issue 23's goal 2 setting)", True),
        ("ferry replace, 1 stream", ["--mode", "replace", "--streams", "1", "--artifacts", "none"], fresh, "new table in the same transaction + FREEZE: WAL skipped, so compared with the ceiling that skips it", False),
        ("ferry replace, 2 streams", ["--mode", "replace", "--streams", "2", "--artifacts", "none"], fresh, "new table, then swapped in", True),
        ("ferry upsert, 1 stream", ["--mode", "upsert", "--streams", "1", "--artifacts", "none"], fresh_pk, "into a table with a primary key: not the same DDL", True),
        ("ferry load, default settings", [], fresh, "append, 1 stream, .sql + .pgcopy artifacts, verify = full (the receipt)", True),
        ("ferry load, default settings but --verify off", ["--verify", "off"], fresh, "no receipt: the difference is what verify = full costs", True),
        ("ferry load, default settings but --streams 2", ["--streams", "2"], fresh, "two-phase commit; artifacts and receipt as by default", True),
    ]:
        cases.append(Case("load", label, "ferry", base + extra, setup, count, note=note, wal=wal))
    # The whole job as the pipeline runs it, defaults throughout: the load
    # above plus file.zip of the artifacts, its manifest, the copy to the
    # output and the job folder removed. Each run starts from an empty job
    # store and output (a job that succeeded is never run again), and
    # --force, as every ferry case here, because the ledger remembers the
    # input from the other cases.
    job_work, job_out = workdir / "job" / "work", workdir / "job" / "output"

    def clear_job(work=job_work):
        shutil.rmtree(work.parent, ignore_errors=True)
        work.mkdir(parents=True)

    cases.append(Case("load", "ferry run, default settings (the whole job: load, file.zip, upload)", "ferry",
                      [str(ferry), "run", "--input", str(csv), "--specs", str(ROOT / "benchmarks/specs"),
                       "--work-dir", str(job_work), "--output", str(job_out), "--database-url", PG_URL,
                       "--force", "-q"],
                      fresh, count, note="the default load, then its artifacts deflated into file.zip and "
                                         "copied to the output folder; per-step seconds in the extras",
                      prep=clear_job, after=lambda work=job_work: job_figures(work)))
    # The same whole job with the input split into 4 parts ([source] split_size at a quarter
    # of the file), each transformed by its own child process, then loaded as one load. The
    # spec is written here because the part size follows the file's. Not a default setting:
    # a dataset asks for it.
    split_specs = workdir / "split-specs"
    split_work = workdir / "split-job" / "work"

    def split_prep(work=split_work, specs=split_specs, csv=csv):
        clear_job(work)
        shutil.rmtree(specs, ignore_errors=True)
        shutil.copytree(ROOT / "benchmarks/specs/lineitem", specs / "lineitem")
        toml = specs / "lineitem" / "dataset.toml"
        part = csv.stat().st_size // 4 + 1
        toml.write_text(toml.read_text().replace("[source]\n", f"[source]\nsplit_size = {part}\n", 1))

    cases.append(Case("load", "ferry run, the input split into 4 parts (split_size = a quarter of the file)", "ferry",
                      [str(ferry), "run", "--input", str(csv), "--specs", str(split_specs),
                       "--work-dir", str(split_work), "--output", str(split_work.parent / "output"),
                       "--database-url", PG_URL, "--force", "-q"],
                      fresh, count, note="not the default: [source] split_size set; parts as child processes "
                                         "(one at a time on fewer than 8 cores), then one load of their .pgcopy files",
                      prep=split_prep, after=lambda work=split_work: job_figures(work)))
    sqldir = workdir / "replay"
    cases.append(Case("load", "ferry .sql artifacts replayed by psql", "psql",
                      ["psql", PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(sqldir / "load.sql")],
                      fresh, count, note="COPY text blocks written by ferry convert --to sql"))
    if py:
        script = ("import psycopg,sys\n"
                  "with psycopg.connect(sys.argv[1], autocommit=True) as c, open(sys.argv[2],'rb') as f:\n"
                  "  with c.cursor().copy(\"COPY lineitem FROM STDIN (FORMAT csv, DELIMITER '|')\") as cp:\n"
                  "    while b := f.read(1 << 20): cp.write(b)\n")
        cases.append(Case("load", "psycopg COPY FROM STDIN", "psycopg",
                          [str(py), "-c", script, PG_URL, str(csv)], fresh, count))
    if loader:
        cmd_file = workdir / "pgloader.load"
        cmd_file.write_text(
            f"LOAD CSV FROM '{csv}' ({', '.join(COLUMNS)})\n"
            f"  INTO postgresql://postgres@127.0.0.1:{PG_PORT}/postgres?tablename=lineitem ({', '.join(COLUMNS)})\n"
            "  WITH fields terminated by '|', fields optionally enclosed by '\"', fields escaped by double-quote\n"
            "  SET work_mem to '64MB';\n")
        cases.append(Case("load", "pgloader", "pgloader", [loader, "--quiet", str(cmd_file)], fresh, count,
                          note="defaults; one run per scale (it takes minutes)"))
    # The wide table: every encoder family, against the server ingesting the
    # same rows pre-encoded. Like for like: in the first pair both load into
    # the same pre-created table (the table as ferry creates it) and write
    # WAL; in the second both create the table in the load's transaction,
    # which skips WAL under wal_level = minimal.
    wide_fresh = f"DROP TABLE IF EXISTS wide; {d['wide_table_ddl']}"
    wide_count = ("SELECT count(*) FROM wide", d["wide_rows"])
    wide_copy = sum([["-c", f"COPY wide FROM '{p}' (FORMAT binary)"] for p in d["wide_pgcopy"]], [])
    wide_ferry = [str(ferry), "load", "--dataset", str(ROOT / "benchmarks/specs/wide"), "--input", str(d["wide"]),
                  "--database-url", PG_URL, "--work-dir", str(workdir), "--force", "-q", "--artifacts", "none",
                  "--streams", "1"]
    w = dict(rows=d["wide_rows"], in_bytes=d["wide_bytes"])
    cases += [
        Case("wide", "binary ceiling (prebuilt PGCOPY, 1 stream)", "postgres",
             ["psql", PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1"] + wide_copy, wide_fresh, wide_count,
             note="reference: into the pre-created table", **w),
        Case("wide", "ferry append (Arrow IPC, all types), 1 stream", "ferry", wide_ferry, wide_fresh, wide_count,
             note="into the same pre-created table", **w),
        Case("wide", "binary ceiling, table created in the same transaction", "postgres",
             ["psql", PG_URL, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-c", d["wide_table_ddl"]] + wide_copy,
             "DROP TABLE IF EXISTS wide", wide_count, note="reference for cases that skip WAL", wal=False, **w),
        Case("wide", "ferry append creating the table, 1 stream", "ferry", wide_ferry, "DROP TABLE IF EXISTS wide",
             wide_count, note="ferry creates the table in its load transaction: WAL skipped", wal=False, **w),
    ]
    return cases


def convert_cases(d, ferry, py, workdir):
    csv, parquet = d["csv"], d["parquet"]
    out = workdir / "out"
    spec = str(ROOT / "benchmarks/specs/lineitem")
    cases = []
    def ferry_convert(inp, to, dest, validate, extra=()):
        # The CSV needs the spec (no header, declared types); Parquet describes itself.
        cmd = [str(ferry), "convert"] + (["--dataset", spec] if inp == csv else [])
        cmd += ["--input", str(inp), "--to", to, "--output", str(dest), "--force", "-q", "--work-dir", str(workdir)]
        cmd += list(extra) + ([] if validate else ["--no-validate"])
        return cmd
    pq, pqv = out / "ferry.parquet", out / "ferry-validated.parquet"
    cases += [
        Case("csv→parquet", "ferry, no validation", "ferry", ferry_convert(csv, "parquet", pq, False, ["--compression", "snappy"]), server=False),
        Case("csv→parquet", "ferry, validated by reconversion", "ferry", ferry_convert(csv, "parquet", pqv, True, ["--compression", "snappy"]), server=False),
        Case("parquet→csv", "ferry, no validation", "ferry", ferry_convert(parquet, "csv", out / "ferry.csv", False, ["--delimiter", "|", "--no-header"]), server=False),
        Case("parquet→csv", "ferry, validated by reconversion", "ferry", ferry_convert(parquet, "csv", out / "ferry.csv", True, ["--delimiter", "|", "--no-header"]), server=False),
        Case("read back", "ferry (validate step: streams the output, digests and compares; nothing materialised)", "ferry",
             [str(ferry), "convert", "--dataset", spec, "--input", str(csv), "--to", "parquet", "--output", str(pqv),
              "--step", "validate", "-q", "--work-dir", str(workdir)], server=False),
    ]
    # The Converter as a job (ferry run: convert, validate, file.zip copied to the output), whole
    # and with the input split into 4 parts ([source] split_size at a quarter of the file): each
    # part a child process writing one file of a Parquet dataset folder, then one validation of
    # them all. Not the default: a dataset asks for the split.
    for split in (False, True):
        specs, work = workdir / f"conv-specs-{int(split)}", workdir / f"conv-job-{int(split)}" / "work"

        def conv_prep(specs=specs, work=work, split=split):
            shutil.rmtree(work.parent, ignore_errors=True)
            work.mkdir(parents=True)
            shutil.rmtree(specs, ignore_errors=True)
            shutil.copytree(ROOT / "benchmarks/specs/lineitem", specs / "lineitem")
            toml = specs / "lineitem" / "dataset.toml"
            text = toml.read_text()
            # A Converter dataset: no table to load, the same source.
            text = text[:text.index("[target]")] + text[text.index("[routing]"):]
            text = text.replace('workflow = "loader"', 'workflow = "converter"')
            text += '\n[convert]\nto = "parquet"\ncompression = "snappy"\n'
            if split:
                text = text.replace("[source]\n", f"[source]\nsplit_size = {csv.stat().st_size // 4 + 1}\n", 1)
            toml.write_text(text)

        name = ("ferry run, the input split into 4 parts (split_size = a quarter of the file)" if split
                else "ferry run, the whole job (convert, validate, file.zip, upload)")
        note = ("not the default: parts as child processes (one at a time on fewer than 8 cores), each a file "
                "of a Parquet dataset folder, then one validation of all parts, file.zip" if split
                else "default settings: convert, validate by reconversion, file.zip, copy to the output")
        cases.append(Case("csv→parquet", name, "ferry",
                          [str(ferry), "run", "--input", str(csv), "--specs", str(specs), "--work-dir", str(work),
                           "--output", str(work.parent / "output"), "-q"],
                          server=False, note=note, prep=conv_prep, after=lambda work=work: job_figures(work)))
    if not py:
        return cases
    types_duck = ("{'l_orderkey':'BIGINT','l_partkey':'BIGINT','l_suppkey':'BIGINT','l_linenumber':'INTEGER',"
                  "'l_quantity':'DECIMAL(15,2)','l_extendedprice':'DECIMAL(15,2)','l_discount':'DECIMAL(15,2)','l_tax':'DECIMAL(15,2)',"
                  "'l_returnflag':'VARCHAR','l_linestatus':'VARCHAR','l_shipdate':'DATE','l_commitdate':'DATE','l_receiptdate':'DATE',"
                  "'l_shipinstruct':'VARCHAR','l_shipmode':'VARCHAR','l_comment':'VARCHAR'}")
    duck_csv = f"read_csv('{csv}', delim='|', header=false, quote='\"', columns={types_duck})"
    polars_schema = ("{'l_orderkey':pl.Int64,'l_partkey':pl.Int64,'l_suppkey':pl.Int64,'l_linenumber':pl.Int32,"
                     "'l_quantity':pl.Decimal(15,2),'l_extendedprice':pl.Decimal(15,2),'l_discount':pl.Decimal(15,2),'l_tax':pl.Decimal(15,2),"
                     "'l_returnflag':pl.Utf8,'l_linestatus':pl.Utf8,'l_shipdate':pl.Date,'l_commitdate':pl.Date,'l_receiptdate':pl.Date,"
                     "'l_shipinstruct':pl.Utf8,'l_shipmode':pl.Utf8,'l_comment':pl.Utf8}")
    pa_types = ("{'l_orderkey':pa.int64(),'l_partkey':pa.int64(),'l_suppkey':pa.int64(),'l_linenumber':pa.int32(),"
                "'l_quantity':pa.decimal128(15,2),'l_extendedprice':pa.decimal128(15,2),'l_discount':pa.decimal128(15,2),'l_tax':pa.decimal128(15,2),"
                "'l_returnflag':pa.string(),'l_linestatus':pa.string(),'l_shipdate':pa.date32(),'l_commitdate':pa.date32(),'l_receiptdate':pa.date32(),"
                "'l_shipinstruct':pa.string(),'l_shipmode':pa.string(),'l_comment':pa.string()}")
    names = repr(COLUMNS)
    P = lambda code: [str(py), "-c", code]
    cases += [
        Case("csv→parquet", "DuckDB", "duckdb", P(
            f"import duckdb; duckdb.sql(\"\"\"COPY (SELECT * FROM {duck_csv}) TO '{out}/duckdb.parquet' (FORMAT parquet, COMPRESSION snappy)\"\"\")"), server=False),
        Case("csv→parquet", "polars (streaming)", "polars", P(
            f"import polars as pl; pl.scan_csv('{csv}', separator='|', has_header=False, quote_char='\"', new_columns={names}, schema={polars_schema}).sink_parquet('{out}/polars.parquet', compression='snappy')"), server=False),
        Case("csv→parquet", "pyarrow (streaming)", "pyarrow", P(
            "import pyarrow as pa, pyarrow.csv as c, pyarrow.parquet as pq\n"
            f"r = c.open_csv('{csv}', read_options=c.ReadOptions(column_names={names}, block_size=1<<22), parse_options=c.ParseOptions(delimiter='|'), convert_options=c.ConvertOptions(column_types={pa_types}))\n"
            f"w = pq.ParquetWriter('{out}/pyarrow.parquet', r.schema, compression='snappy')\n"
            "for b in r: w.write_batch(b)\n"
            "w.close()"), server=False),
        Case("parquet→csv", "DuckDB", "duckdb", P(
            f"import duckdb; duckdb.sql(\"\"\"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{out}/duckdb.csv' (FORMAT csv, DELIMITER '|', HEADER false)\"\"\")"), server=False),
        Case("parquet→csv", "polars (streaming)", "polars", P(
            f"import polars as pl; pl.scan_parquet('{parquet}').sink_csv('{out}/polars.csv', separator='|', include_header=False)"), server=False),
        Case("parquet→csv", "pyarrow (streaming)", "pyarrow", P(
            "import pyarrow.parquet as pq, pyarrow.csv as c\n"
            f"f = pq.ParquetFile('{parquet}')\n"
            f"w = c.CSVWriter('{out}/pyarrow.csv', f.schema_arrow, write_options=c.WriteOptions(include_header=False, delimiter='|'))\n"
            "for b in f.iter_batches(batch_size=65536): w.write_batch(b)\n"
            "w.close()"), server=False),
        Case("read back", "DuckDB (its Parquet, materialised as one Arrow table; compares nothing)", "duckdb", P(
            f"import duckdb; r = duckdb.sql(\"SELECT * FROM read_parquet('{out}/duckdb.parquet')\").arrow(); t = r.read_all() if hasattr(r, 'read_all') else r; assert t.num_rows == {d['rows']}"), server=False),
        Case("read back", "polars (its Parquet, materialised; compares nothing)", "polars", P(
            f"import polars as pl; t = pl.read_parquet('{out}/polars.parquet'); assert t.height == {d['rows']}"), server=False),
        Case("read back", "pyarrow (its Parquet, materialised; compares nothing)", "pyarrow", P(
            f"import pyarrow.parquet as pq; t = pq.read_table('{out}/pyarrow.parquet'); assert t.num_rows == {d['rows']}"), server=False),
        # The like-for-like shape of ferry's read: every column decoded batch
        # by batch, nothing kept (though nothing compared either).
        Case("read back", "pyarrow (its Parquet, streamed batch by batch; compares nothing)", "pyarrow", P(
            f"import pyarrow.parquet as pq\nn = sum(b.num_rows for b in pq.ParquetFile('{out}/pyarrow.parquet').iter_batches(batch_size=65536))\nassert n == {d['rows']}"), server=False),
    ]
    return cases
