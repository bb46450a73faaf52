"""The fast path's function in the local execution of the synthesized template: the Lambda
service played with a real runtime API emulator (`cargo lambda watch --only-lambda-apis`) and
`ferry lambda` sandboxes, and the checks of run_synthesized.py's section 9."""

import json
import os
import subprocess
import threading
import time
import urllib.request

from emulate import RDS_CA_BUNDLE, of_type, psql, wait_executions


class LambdaAgent:
    """Plays Lambda for the fast path's function: `cargo lambda watch --only-lambda-apis` serves the
    runtime API and the Invoke API (moto forwards the function's invocations there, see
    scripts/moto_server.py), and here `ferry lambda` sandboxes poll it, each with the function's
    environment, its role's credentials and the command of its image. A sandbox whose invocation
    outlives the function's timeout is killed and replaced, as Lambda ends a timed-out sandbox."""

    def __init__(self, function, cargo_lambda, repo, endpoint, ferry, base_env, work, logs, pg_ca, sessions):
        self.function, self.cargo_lambda, self.repo, self.endpoint = function, cargo_lambda, repo, endpoint
        self.ferry, self.base_env, self.work, self.logs, self.pg_ca = ferry, base_env, work, logs, pg_ca
        self.sessions = sessions
        self.timeout = function["timeout"]
        self.sandboxes, self.lock = [], threading.Lock()
        self.invocations = []  # {"key", "request_id", "sandbox", "started", "seconds", "outcome"}
        self.killed = threading.Event()
        self.stop_flag = threading.Event()

    def start(self, sandboxes):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.watch_log = open(os.path.join(self.logs, "cargo-lambda.log"), "wb")
        self.watch = subprocess.Popen(
            [self.cargo_lambda, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(self.port),
             # Its timeout also ends idle polls, which the Rust runtime takes for a broken API: longer
             # than any run. The function's own timeout is kept by moto and by the watchdog below.
             "--timeout", "3600", "--concurrency", str(sandboxes),
             "--manifest-path", os.path.join(self.repo, "Cargo.toml")],
            stdout=self.watch_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit(f"cargo lambda watch did not start: {open(self.watch_log.name).read()}")
                time.sleep(0.2)
        # The binary cargo lambda serves: `ferry` (the workspace's binary named like the function).
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/ferry/invocations"
        req = urllib.request.Request(self.endpoint + "/_ferry/lambda", method="POST", headers={
            "Content-Type": "application/json"}, data=json.dumps(
            {"function": self.function["name"], "url": url, "timeout": self.timeout}).encode())
        urllib.request.urlopen(req).read()
        for _ in range(sandboxes):
            self.spawn()
        threading.Thread(target=self.watchdog, daemon=True).start()

    def env(self):
        env = dict(self.base_env)
        role = self.sessions[self.function["role"]]
        env.update({"AWS_ACCESS_KEY_ID": role["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": role["aws_secret_access_key"],
                    "AWS_SESSION_TOKEN": role["aws_session_token"]})
        env.update(self.function["environment"])
        # The EFS mount, and the RDS CA bundle in the image: here, local stand-ins (as for the tasks).
        if env.get("FERRY_WORK_DIR", "").startswith("/mnt/"):
            env["FERRY_WORK_DIR"] = self.work
        if env.get("PGSSLROOTCERT") == RDS_CA_BUNDLE:
            env["PGSSLROOTCERT"] = self.pg_ca
        env.update({"AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.port}/.rt/ferry",
                    "AWS_LAMBDA_FUNCTION_NAME": "ferry", "AWS_LAMBDA_FUNCTION_VERSION": "1",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function["memory"])})
        return env

    def spawn(self):
        n = len(self.sandboxes)
        log = os.path.join(self.logs, f"lambda-{n:02d}.log")
        proc = subprocess.Popen([self.ferry] + self.function["command"], env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        box = {"n": n, "proc": proc, "log": log, "current": None}
        with self.lock:
            self.sandboxes.append(box)
        threading.Thread(target=self.follow, args=(box,), daemon=True).start()

    def follow(self, box):
        """Copies a sandbox's log lines to its file and notes each invocation's start and end."""
        with open(box["log"], "wb") as f:
            for raw in box["proc"].stdout:
                f.write(raw)
                f.flush()
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                with self.lock:
                    if line.get("message") == "lambda invocation started":
                        box["current"] = {"key": line.get("key"), "request_id": line.get("request_id"),
                                          "sandbox": box["n"], "started": time.time(), "outcome": None}
                        self.invocations.append(box["current"])
                    elif line.get("message") in ("lambda invocation done", "lambda invocation failed") and box["current"]:
                        box["current"].update(outcome=line.get("status") or line.get("error_name"),
                                              seconds=round(time.time() - box["current"]["started"], 2),
                                              run=line.get("run"))
                        box["current"] = None

    def watchdog(self):
        while not self.stop_flag.is_set():
            with self.lock:
                late = [b for b in self.sandboxes if b["current"] and b["proc"].poll() is None
                        and time.time() - b["current"]["started"] > self.timeout]
            for box in late:
                box["proc"].kill()
                box["proc"].wait()
                with self.lock:
                    box["current"].update(outcome="killed at its timeout",
                                          seconds=round(time.time() - box["current"]["started"], 2))
                    box["current"] = None
                self.killed.set()
                self.spawn()
            time.sleep(0.1)

    def running(self, key):
        with self.lock:
            return [i for i in self.invocations if i["key"] == key and i["outcome"] is None]

    def stop(self):
        self.stop_flag.set()
        for box in self.sandboxes:
            if box["proc"].poll() is None:
                box["proc"].kill()
        if getattr(self, "watch", None):
            self.watch.kill()


def lineitem_row_of(size, specs):
    """One lineitem line of exactly `size` bytes (its comment padded), from the sample's first."""
    first = open(os.path.join(specs, "lineitem", "sample.tbl")).readline().rstrip("\n").split("|")
    first[15] = ""
    base = len(("|".join(first) + "\n").encode())
    pad = size - base
    if not 0 < pad <= 44:
        raise SystemExit(f"cannot make a lineitem line of {size} bytes (its comment would be {pad})")
    first[15] = "c" * pad
    return ("|".join(first) + "\n").encode()


def zip_entries(s3, bucket, job_id):
    import io
    import zipfile

    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
               if job_id in o["Key"] and o["Key"].endswith("file.zip"))
    z = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return {n: z.read(n) for n in z.namelist()}


def fast_path_checks(checks, template, resolve, deployed, lambdas, agent, aws, db_url, specs, out_bucket):
    s3, sfn, ddb, events = aws("s3"), aws("stepfunctions"), aws("dynamodb"), aws("events")
    orchestrator = deployed["machines"]["Orchestrator"]
    lid = next(l for l, _ in of_type(template, "AWS::StepFunctions::StateMachine") if l.startswith("Orchestrator"))
    definition = json.loads(resolve(template["Resources"][lid]["Properties"]["DefinitionString"]))
    limit = definition["States"]["By size"]["Choices"][0]["And"][2]["NumericLessThanEquals"]
    at, over = lineitem_row_of(limit, specs), lineitem_row_of(limit + 1, specs)

    def job_of(key):
        items = ddb.scan(TableName=deployed["table"])["Items"]
        docs = [json.loads(i["doc"]["S"]) for i in items if i["pk"]["S"].startswith("job#")]
        return next((d for d in docs if d["input"]["uri"].endswith("/" + key)), None)

    def ecs_create_jobs(key):
        return [r for r in agent.runs if r["step"] == "create-job" and any(key in str(c) for c in r["command"])]

    def invocations(key):
        return [i for i in lambdas.invocations if i["key"] == key]

    def executions():
        return sfn.list_executions(stateMachineArn=orchestrator)["executions"]

    rows = lambda: int(psql(db_url, "SELECT count(*) FROM public.lineitem"))
    before, known = rows(), len(executions())
    key_at, key_over = "small/lineitem-at-limit.tbl", "small/lineitem-over-limit.tbl"
    s3.put_object(Bucket=deployed["input"], Key=key_at, Body=at)
    s3.put_object(Bucket=deployed["input"], Key=key_over, Body=over)
    wait_executions(sfn, orchestrator, known + 2, timeout=240)
    job_at, job_over = job_of(key_at), job_of(key_over)
    steps = [st["step"] for st in (job_at or {}).get("steps", [])]
    checks.ok(job_at and job_at["status"] == "succeeded" and not ecs_create_jobs(key_at)
              and [i["outcome"] for i in invocations(key_at)] == ["succeeded"]
              and steps == ["create-job", "s3-efs-downloader", "transform+sql-processor", "efs-s3-uploader", "notify"],
              f"{len(at)} bytes (= lambdaMaxBytes): the whole job in one Lambda invocation, no ECS task: {steps}, "
              f"{invocations(key_at)}")
    checks.ok(job_over and job_over["status"] == "succeeded" and len(ecs_create_jobs(key_over)) == 1
              and not invocations(key_over),
              f"{len(over)} bytes (one over): the ECS path ({len(ecs_create_jobs(key_over))} create-job task, "
              f"{len(invocations(key_over))} invocations)")
    checks.ok(rows() == before + 2, f"public.lineitem: +{rows() - before} rows (one each)")

    # A table held by another session keeps the next small object's invocation past its timeout.
    key_late = "small/lineitem-late.tbl"
    locker = subprocess.Popen(["psql", db_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    locker.stdin.write("BEGIN; LOCK TABLE public.lineitem IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
    locker.stdin.flush()
    locked = locker.stdout.readline().strip()
    lambdas.killed.clear()
    known = len(executions())
    seen = {e["executionArn"] for e in executions()}
    fresh = lambda: [e for e in executions() if e["executionArn"] not in seen]
    s3.put_object(Bucket=deployed["input"], Key=key_late, Body=at)
    deadline = time.time() + 60
    while not lambdas.running(key_late) and time.time() < deadline:
        time.sleep(0.1)
    # The same S3 event again (EventBridge delivers at least once) while that job runs.
    head = s3.head_object(Bucket=deployed["input"], Key=key_late)
    events.put_events(Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps({
        "bucket": {"name": deployed["input"]},
        "object": {"key": key_late, "size": len(at), "etag": head["ETag"].strip('"'),
                   "version-id": head["VersionId"]}})}])
    duplicate, deadline = None, time.time() + 60
    while duplicate is None and time.time() < deadline:
        duplicate = next((e for e in fresh() if e["status"] == "SUCCEEDED"), None)
        time.sleep(0.3)
    output = json.loads(sfn.describe_execution(executionArn=duplicate["executionArn"]).get("output") or "{}") \
        if duplicate else {}
    ran = ((output.get("lambda") or {}).get("job") or {}).get("run")
    checks.ok(locked == "locked" and duplicate is not None and ran is False and len(lambdas.running(key_late)) == 1,
              f"an event re-delivered while its job runs in Lambda: its invocation ran nothing (run={ran}), "
              f"the first still runs")
    killed = lambdas.killed.wait(lambdas.timeout + 60)
    locker.stdin.write("ROLLBACK;\n")
    locker.stdin.close()
    locker.wait(timeout=30)
    wait_executions(sfn, orchestrator, known + 2, timeout=300)
    job_late = job_of(key_late) or {}
    outcome = [i["outcome"] for i in invocations(key_late)]
    checks.ok(killed and job_late.get("status") == "succeeded" and job_late.get("attempts") == 2
              and len(ecs_create_jobs(key_late)) == 1 and "killed at its timeout" in outcome
              and [e["status"] for e in fresh()] == ["SUCCEEDED", "SUCCEEDED"],
              f"an invocation past its {lambdas.timeout} s timeout was killed, and the ECS path took its job over "
              f"(attempt {job_late.get('attempts')}, {job_late.get('status')}); invocations: {outcome}")
    checks.ok(rows() == before + 3, f"public.lineitem: +{rows() - before - 2} rows for it (once)")
    by_lambda, by_ecs = zip_entries(s3, out_bucket, job_at["job_id"]), zip_entries(s3, out_bucket, job_late["job_id"])
    data = [n for n in by_lambda if n.startswith("artifacts/") and n != "artifacts/load.sql"]
    differ = [n for n in data if by_lambda[n] != by_ecs.get(n)]
    checks.ok(sorted(by_lambda) == sorted(by_ecs) and len(data) >= 2 and not differ,
              f"the same bytes made the same artifacts by Lambda and by ECS: {data} (differ: {differ})")
