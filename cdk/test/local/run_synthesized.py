#!/usr/bin/env python3
"""The synthesized architecture, executed locally.

Reads the template `cdk synth` wrote, creates what it describes in the local
AWS emulator (buckets, the jobs table, the topic, the secret, the ECS cluster
and task definitions, the four state machines with their synthesized ASL, the
EventBridge rule with its dead-letter queue), then puts objects into the input
bucket and lets it run: S3 → EventBridge → orchestrator → Loader/Converter →
one ECS task per step. An "ECS agent" thread plays Fargate: for every task the
state machines start it reads the task's container overrides and its task
definition (environment, and secrets resolved from Secrets Manager as ECS
does), and runs that command with the real `ferry` binary against the local
PostgreSQL and the emulator, with the job folders in a local directory standing
in for EFS. ferry answers the task token itself (SendTaskSuccess/Failure). Small
objects take the fast path: a "Lambda agent" (fast_path.py) serves the function's
invocations with `ferry lambda` under cargo lambda's runtime API emulator.

What differs from AWS, and why: FERRY_WORK_DIR (/data, the EFS mount) and
FERRY_SPECS (/opt/ferry/sql, baked into the image) point at local folders, and
the RDS CA bundle the image ships (PGSSLROOTCERT) is the test server's CA: the
tasks connect exactly as the stack configures them, PGSSLMODE=verify-full over
TLS to a certificate for the secret's host. IAM is enforced: the template's roles
and policies are created as synthesized, each task runs with its task role's
credentials (its secrets read with its execution role's), each state machine's
integrations call with its role's (scripts/moto_server.py), the harness is an
admin; what the emulator cannot judge (KMS key policies, EFS, ECR, logs) the
CDK rule tests check.

  python run_synthesized.py --template cdk.out/Ferry.template.json --ferry PATH \
      --endpoint http://127.0.0.1:PORT --database-url postgres://… --specs ../sql \
      --pg-ca CA.crt

Exit 0 when every check passes; each check prints one line with its figures.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.exceptions

from emulate import (RDS_CA_BUNDLE, REGION, Resolver, create_functions, deploy, enforce_iam, grant, of_type, psql,
                     wait_executions)
from fast_path import LambdaAgent, fast_path_checks



def say(*a):
    print("local-aws:", *a, file=sys.stderr, flush=True)


class Checks:
    def __init__(self):
        self.failed = []

    def ok(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failed.append(what)


# ---------------------------------------------------------------- the ECS agent

class Agent(threading.Thread):
    """Plays Fargate: runs each started task's command with the real binary, then stops the task."""

    def __init__(self, aws, deployed, ferry, base_env, work, specs, logs, pg_ca, sessions):
        super().__init__(daemon=True)
        self.aws, self.ecs, self.sessions = aws, aws("ecs"), sessions
        self.deployed, self.ferry, self.base_env = deployed, ferry, base_env
        self.work, self.specs, self.logs, self.pg_ca = work, specs, logs, pg_ca
        self.seen, self.runs, self.stop_flag = set(), [], threading.Event()
        # (step, text in the job's input): tasks that hang instead of running, as a hung process
        # would: no heartbeats, no answer, until somebody stops the ECS task.
        self.hang = set()
        self.hanging = []  # (task arn, input) of hung tasks, as they start
        self.pool = ThreadPoolExecutor(max_workers=4)

    def run(self):
        while not self.stop_flag.is_set():
            try:
                arns = self.ecs.list_tasks(cluster=self.deployed["cluster"], desiredStatus="RUNNING")["taskArns"]
                new = [a for a in arns if a not in self.seen]
                if new:
                    self.seen.update(new)
                    for t in self.ecs.describe_tasks(cluster=self.deployed["cluster"], tasks=new)["tasks"]:
                        self.pool.submit(self.run_task, t)
            except Exception as e:  # keep playing Fargate; the checks will tell
                say(f"agent: {e}")
            time.sleep(0.1)

    def env_for(self, task):
        family = task["taskDefinitionArn"].split("/")[-1].split(":")[0]
        env = self.env_for_container(family)
        override = task["overrides"]["containerOverrides"][0]
        for e in override.get("environment", []):
            env[e["name"]] = e["value"]
        return env, override["command"]

    def env_for_container(self, family):
        """The environment ECS gives the container of this task definition, mapped to this machine:
        its task role's credentials, and its secrets read with its execution role's."""
        container, roles = self.deployed["task_definitions"][family], self.deployed["roles"][family]
        env = dict(self.base_env)
        task_role = self.sessions[roles["task"]]
        env.update({"AWS_ACCESS_KEY_ID": task_role["aws_access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": task_role["aws_secret_access_key"],
                    "AWS_SESSION_TOKEN": task_role["aws_session_token"]})
        for e in container.get("environment", []):
            env[e["name"]] = e["value"]
        secrets = self.aws("secretsmanager", self.sessions[roles["execution"]])
        for s in container.get("secrets", []):
            # valueFrom = <secret arn>:<json key>::  (as ECS resolves it at task start)
            arn, key = s["valueFrom"].rsplit(":", 3)[:2]
            value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])[key]
            env[s["name"]] = str(value)
        # The EFS mount and (with -c specs=image) the image's specs folder, here. Specs in S3
        # (the default) are read from the deployed bucket, as in AWS.
        if env.get("FERRY_WORK_DIR") == "/data":
            env["FERRY_WORK_DIR"] = self.work
        if not env.get("FERRY_SPECS", "").startswith("s3://"):
            env["FERRY_SPECS"] = self.specs
        # The RDS CA bundle in the image: here, the CA of the test server's certificate.
        if env.get("PGSSLROOTCERT") == RDS_CA_BUNDLE:
            env["PGSSLROOTCERT"] = self.pg_ca
        return env

    def job_input(self, command):
        """The input URI of the job a task's command names (its record in the deployed table)."""
        if "--job-id" not in command:
            return ""
        job_id = command[command.index("--job-id") + 1]
        ddb = self.aws("dynamodb")
        item = ddb.get_item(TableName=self.deployed["table"], Key={"pk": {"S": f"job#{job_id}"}}).get("Item")
        return json.loads(item["doc"]["S"])["input"]["uri"] if item else ""

    def run_task(self, task):
        env, command = self.env_for(task)
        started = time.time()
        step = command[1] if len(command) > 1 else "?"
        # ECS refuses RunTask when the overrides' JSON exceeds 8 KiB; the emulator does not check.
        overrides = len(json.dumps(task["overrides"], separators=(",", ":")).encode())
        log = os.path.join(self.logs, f"{len(self.runs):03d}-{step}.log")
        record = {"step": step, "seconds": 0, "log": log, "token_in_env": "FERRY_TASK_TOKEN" in env,
                  "sslmode": env.get("PGSSLMODE"), "database": "PGHOST" in env, "overrides": overrides,
                  "command": command}
        source = self.job_input(command)
        if any(step == s and text in source for s, text in self.hang):
            self.hanging.append((task["taskArn"], source))
            record.update(exit="hung", input=source, stopped=self.wait_stopped(task["taskArn"]))
            record["seconds"] = round(time.time() - started, 2)
            open(log, "w").write(f"hung on purpose; stopped: {record['stopped']}\n")
            self.runs.append(record)
            return
        with open(log, "wb") as f:
            rc = subprocess.run([self.ferry] + command, env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=300).returncode
        record.update(exit=rc, seconds=round(time.time() - started, 2))
        self.runs.append(record)
        self.ecs.stop_task(cluster=self.deployed["cluster"], task=task["taskArn"], reason=f"ferry exited {rc}")

    def wait_stopped(self, arn, timeout=240):
        """Waits for somebody else to stop the task; returns its stoppedReason (None: never stopped)."""
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop_flag.is_set():
            t = self.ecs.describe_tasks(cluster=self.deployed["cluster"], tasks=[arn])["tasks"][0]
            if t.get("desiredStatus") == "STOPPED" or t.get("lastStatus") == "STOPPED":
                return t.get("stoppedReason", "")
            time.sleep(0.3)
        return None


# ---------------------------------------------------------------- the run

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", required=True)
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--database-url", required=True, help="an admin URL; a fresh database is made from it")
    ap.add_argument("--specs", required=True)
    ap.add_argument("--pg-ca", default=os.environ.get("FERRY_TEST_PG_CA"),
                    help="the CA of the test server's TLS certificate (stands in for the RDS CA bundle)")
    args = ap.parse_args()
    if not args.pg_ca or not os.path.isfile(args.pg_ca):
        ap.error("--pg-ca (or FERRY_TEST_PG_CA): the test server's CA certificate is needed for verify-full")
    checks = Checks()
    template = json.load(open(args.template))
    endpoint = args.endpoint.rstrip("/")
    # Step Functions executes definitions (and ECS tasks stay RUNNING until stopped) only on request.
    for path, body in [("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}}),
                       ("/moto-api/state-manager/set-transition",
                        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}})]:
        req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
    enforce_iam(endpoint, False)  # a run that died may have left it on
    clients = threading.Lock()  # boto3's default session does not make clients thread-safely
    identity = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}

    def aws(svc, credentials=None):
        with clients:
            return boto3.client(svc, endpoint_url=endpoint, region_name=REGION, **(credentials or identity))

    # A fresh database for the deployed pipeline.
    from urllib.parse import urlparse, urlunparse
    u = urlparse(args.database_url)
    dbname = f"ferry_deployed_{os.getpid()}"
    psql(args.database_url, f"DROP DATABASE IF EXISTS {dbname}")
    psql(args.database_url, f"CREATE DATABASE {dbname}")
    db_url = urlunparse(u._replace(path=f"/{dbname}"))
    pg = {"host": u.hostname, "port": u.port or 5432, "user": u.username or "postgres", "password": u.password or "",
          "dbname": dbname}

    suffix = uuid.uuid4().hex[:8]
    resolve = Resolver()
    deployed = deploy(template, aws, resolve, pg, suffix)
    sessions = grant(template, aws, resolve, suffix)
    create_functions(template, aws, resolve, deployed)
    say(f"deployed: {len(template['Resources'])} template resources; machines {sorted(deployed['machines'])}; "
        f"{len(sessions) - 1} roles")
    # From here on every request is judged by IAM: the harness as an admin, each task with its task
    # role (its secrets read with its execution role), each state machine's integrations with its role.
    identity = sessions["admin"]
    enforce_iam(endpoint, True)

    tmp = tempfile.mkdtemp(prefix="ferry-deployed-")
    work, logs = os.path.join(tmp, "efs"), os.path.join(tmp, "logs")
    os.makedirs(work)
    os.makedirs(logs)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG", "DATABASE_URL", "FERRY_"))}
    base_env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION})
    # The repository's specs, plus one whose transform names a column the file lacks: with a
    # file of 1,200 long column names, DataFusion's error lists them all (~37 KB).
    specs = os.path.join(tmp, "specs")
    shutil.copytree(args.specs, specs)
    os.makedirs(os.path.join(specs, "wide"))
    with open(os.path.join(specs, "wide", "dataset.toml"), "w") as f:
        f.write('[source]\nformat = "csv"\n\n[routing]\nkeys = ["**/wide*.csv"]\nworkflow = "loader"\n\n'
                '[target]\ntable = "public.wide"\n')
    with open(os.path.join(specs, "wide", "transform.sql"), "w") as f:
        f.write("SELECT no_such_column FROM source\n")
    # And one Loader and one Converter dataset that split their inputs ([source] split_size), so the
    # Distributed Maps of parts run: the lineitem sample in 8 KiB parts, 2,000 orders in 16 KiB parts.
    split_specs = {"items_split": ("lineitem", "split/items*.tbl", "public.items_split", "8KiB"),
                   "orders_split": ("orders_parquet", "convert/split/*.csv", None, "16KiB")}
    for name, (base, key, table, size) in split_specs.items():
        shutil.copytree(os.path.join(specs, base), os.path.join(specs, name))
        toml = os.path.join(specs, name, "dataset.toml")
        text = open(toml).read()
        text = re.sub(r"(?m)^keys = .*$", f'keys = ["{key}"]', text)
        text = text.replace("[source]\n", f'[source]\nsplit_size = "{size}"\n', 1)
        if table:
            text = re.sub(r'(?m)^table = .*$', f'table = "{table}"', text)
        open(toml, "w").write(text)
    split_orders = os.path.join(tmp, "orders-split.csv")
    with open(split_orders, "w") as f:
        f.write("order_id,customer,amount,ordered_at\n")
        for i in range(2000):
            f.write(f"{i},customer {i % 97},{i * 3}.{i % 100:02},2026-11-{1 + i % 28:02}T10:00:00Z\n")
    # Specs in S3 (the stack's default): put there as a user would (`aws s3 sync sql/ …`).
    specs_uri = next((e["value"] for c in deployed["task_definitions"].values() for e in c.get("environment", [])
                      if e["name"] == "FERRY_SPECS"), "")
    if specs_uri.startswith("s3://"):
        bucket, prefix = specs_uri[5:].split("/", 1)
        for name in sorted(os.listdir(specs)):
            folder = os.path.join(specs, name)
            for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                if os.path.isfile(os.path.join(folder, f)):
                    aws("s3").upload_file(os.path.join(folder, f), bucket, f"{prefix}/{name}/{f}")
        say(f"specs uploaded to {specs_uri}")
    agent = Agent(aws, deployed, args.ferry, base_env, work, specs, logs, args.pg_ca, sessions)
    agent.start()
    lambdas = None
    if deployed["functions"]:
        function = next(iter(deployed["functions"].values()))
        cargo_lambda = os.environ.get("FERRY_TEST_CARGO_LAMBDA") or os.path.join(
            os.path.dirname(sys.executable), "cargo-lambda")
        lambdas = LambdaAgent(function, cargo_lambda, os.path.abspath(os.path.join(args.specs, "..")), endpoint,
                              args.ferry, base_env, work, logs, args.pg_ca, sessions)
        # Two sandboxes: a re-delivered event is served while the first invocation still runs.
        lambdas.start(min(2, function["concurrency"]))
        say(f"Lambda: {function['name']} ({function['timeout']} s) served by cargo lambda watch on {lambdas.port}")
    s3, sfn, sqs, ddb = aws("s3"), aws("stepfunctions"), aws("sqs"), aws("dynamodb")
    orchestrator, loader, converter = (deployed["machines"][k] for k in ("Orchestrator", "Loader", "Converter"))
    rows_in_sample = sum(1 for _ in open(os.path.join(args.specs, "lineitem", "sample.tbl")))
    finished = False
    try:
        started = time.time()
        # 1. A good file for the Loader and one for the Converter, put as a producer would.
        s3.upload_file(os.path.join(args.specs, "lineitem", "sample.tbl"), deployed["input"], "in/2026/11/lineitem.tbl")
        s3.upload_file(os.path.join(args.specs, "orders_parquet", "sample.csv"), deployed["input"],
                       "convert/orders/2026/11/orders.csv")
        orch = wait_executions(sfn, orchestrator, 2)
        loads = wait_executions(sfn, loader, 1)
        converts = wait_executions(sfn, converter, 1)
        seconds = time.time() - started
        checks.ok(all(e["status"] == "SUCCEEDED" for e in orch),
                  f"2 objects → 2 orchestrator executions succeeded ({[e['status'] for e in orch]}, {seconds:.1f} s)")
        checks.ok(loads[0]["status"] == "SUCCEEDED", f"Loader execution {loads[0]['status']}")
        checks.ok(converts[0]["status"] == "SUCCEEDED", f"Converter execution {converts[0]['status']}")
        n = int(psql(db_url, "SELECT count(*) FROM public.lineitem"))
        checks.ok(n == rows_in_sample, f"public.lineitem has {n} rows (the file has {rows_in_sample})")
        steps = [r["step"] for r in agent.runs]
        checks.ok(sorted(steps) == sorted(["create-job", "create-job", "s3-efs-downloader", "transform", "sql-processor",
                                           "efs-s3-uploader", "notify", "s3-efs-downloader", "convert", "validate",
                                           "efs-s3-uploader", "notify"]),
                  f"ECS tasks run as `ferry task <step>`: {steps}")
        checks.ok(all(r["token_in_env"] for r in agent.runs), "every task got its task token from the state machine")
        db_steps = [(r["step"], r["sslmode"]) for r in agent.runs if r["database"]]
        checks.ok(bool(db_steps) and all(mode == "verify-full" for _, mode in db_steps),
                  f"database steps connected as the stack configures them (TLS, verify-full): {db_steps}")
        # The job records, as the deployed job store keeps them.
        jobs = [i for i in ddb.scan(TableName=deployed["table"])["Items"] if i["pk"]["S"].startswith("job#")]
        status = sorted(i["status"]["S"] for i in jobs)
        checks.ok(status == ["succeeded", "succeeded"], f"DynamoDB job records: {status}")
        pinned = [next((st["outputs"].get("spec_hash") for st in json.loads(i["doc"]["S"])["steps"]
                        if st["step"] == "create-job"), None) for i in jobs]
        checks.ok(specs_uri.startswith("s3://") and all(pinned),
                  f"create-job read the specs from {specs_uri} and pinned each job's copy: {pinned}")
        # The zips and manifests in the output bucket.
        out_bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "output" in b["Name"] and suffix in b["Name"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=out_bucket).get("Contents", [])]
        zips = [k for k in keys if k.endswith("file.zip")]
        manifests = [k for k in keys if k.endswith("manifest.json")]
        checks.ok(len(zips) == 2 and len(manifests) == 2 and all(k.startswith("ferry/") for k in keys),
                  f"output bucket: {len(zips)} file.zip + {len(manifests)} manifest.json under ferry/")
        # The events, as an SNS subscriber receives them.
        got = receive(sqs, deployed["events_queue"], 2)
        checks.ok(sorted(e.get("status") for e in got) == ["succeeded", "succeeded"],
                  f"SNS job events: {[(e.get('dataset'), e.get('status')) for e in got]}")

        # 2. A bad file: the Loader fails through its Catch path, notified, the table unchanged.
        bad = os.path.join(tmp, "lineitem-bad.tbl")
        with open(os.path.join(args.specs, "lineitem", "sample.tbl")) as f, open(bad, "w") as g:
            lines = f.readlines()
            lines[7] = "x" + lines[7]  # an l_orderkey like "x7" is not a bigint
            g.writelines(lines)
        s3.upload_file(bad, deployed["input"], "in/2026/11/lineitem-bad.tbl")
        orch = wait_executions(sfn, orchestrator, 3)
        loads = wait_executions(sfn, loader, 2)
        failed = [e for e in loads if e["status"] != "SUCCEEDED"]
        checks.ok(len(failed) == 1 and failed[0]["status"] == "FAILED", f"bad file: Loader execution {[e['status'] for e in failed]}")
        if failed:
            d = sfn.describe_execution(executionArn=failed[0]["executionArn"])
            checks.ok(d.get("error") == "ferry.Input", f"the execution fails with ferry's error name: {d.get('error')}")
            hist = sfn.get_execution_history(executionArn=failed[0]["executionArn"], maxResults=1000)["events"]
            entered = [e["stateEnteredEventDetails"]["name"] for e in hist if "stateEnteredEventDetails" in e]
            checks.ok("notify failure" in entered and "sql-processor" not in entered,
                      f"Catch path: {' → '.join(entered)}")
        n2 = int(psql(db_url, "SELECT count(*) FROM public.lineitem"))
        checks.ok(n2 == n, f"the table is unchanged after the failed job ({n2} rows)")
        jobs = [i for i in ddb.scan(TableName=deployed["table"])["Items"] if i["pk"]["S"].startswith("job#")]
        bad_jobs = [i for i in jobs if i["status"]["S"] == "failed"]
        checks.ok(len(bad_jobs) == 1, f"the failed job is recorded as failed ({len(bad_jobs)})")
        got = receive(sqs, deployed["events_queue"], 1)
        message = json.dumps(got)
        value = lines[7].split("|")[0]
        checks.ok([e.get("status") for e in got] == ["failed"] and "lineitem-bad.tbl:8" in message
                  and "l_orderkey" in message and json.dumps(value) in json.loads(message)[0]["error"]["message"]
                  if got else False,
                  f"failure event: {[(e.get('status'), (e.get('error') or {}).get('message', '')[:90]) for e in got]}")

        # 3. Backfill over in/: both objects again through the orchestrator. The loaded one is
        #    recognised (same version, read by HEAD) and skipped; the failed one is re-run, fails
        #    again, and is notified again; nothing loads twice.
        runs_before = len(agent.runs)
        sfn.start_execution(stateMachineArn=deployed["machines"]["Backfill"], name=f"backfill-{suffix}",
                            input=json.dumps({"prefix": "in/"}))
        done = wait_executions(sfn, deployed["machines"]["Backfill"], 1)
        orch = wait_executions(sfn, orchestrator, 5)
        loads = wait_executions(sfn, loader, 3)
        n3 = int(psql(db_url, "SELECT count(*) FROM public.lineitem"))
        reruns = sorted(r["step"] for r in agent.runs[runs_before:])
        checks.ok(done[0]["status"] == "SUCCEEDED", f"backfill of in/: {done[0]['status']}")
        written = [o["Key"] for o in s3.list_objects_v2(Bucket=out_bucket, Prefix="backfill-results/").get("Contents", [])]
        checks.ok(any(k.endswith("manifest.json") for k in written),
                  f"the backfill's map run wrote its results to the output bucket, not its state: {written}")
        checks.ok(len(orch) == 5 and len(loads) == 3,
                  f"backfill: {len(orch) - 3} orchestrator runs, {len(loads) - 2} Loader run (the failed job's retry)")
        checks.ok(reruns == sorted(["create-job", "create-job", "s3-efs-downloader", "transform", "notify"]),
                  f"backfill tasks: {reruns} (the loaded object: create-job only)")
        checks.ok(n3 == n, f"nothing loaded twice: {n3} rows")
        jobs = [i for i in ddb.scan(TableName=deployed["table"])["Items"] if i["pk"]["S"].startswith("job#")]
        attempts = sorted(json.loads(i["doc"]["S"])["attempts"] for i in jobs)
        checks.ok(len(jobs) == 3 and attempts == [1, 1, 2], f"job records: {len(jobs)}, attempts {attempts}")
        got = receive(sqs, deployed["events_queue"], 1)
        checks.ok([e.get("status") for e in got] == ["failed"], "the re-run failure is notified again")

        # 4. A 1,024-byte key and an error of more than 32 KiB, through the whole Loader workflow:
        #    only the job id travels in the overrides (ECS caps them at 8 KiB), the task's failure
        #    cause stays whole JSON within Step Functions' 32,768 characters, and the job record
        #    and the failure event keep the whole message.
        wide = os.path.join(tmp, "wide.csv")
        cols = [f"measurement_column_{i:04d}" for i in range(1200)]
        with open(wide, "w") as f:
            f.write(",".join(cols) + "\n" + ",".join("1" for _ in cols) + "\n")
        key = "edge/" + "/".join(["d" * 200] * 4) + "/wide-"
        key += "w" * (1024 - len(key) - len(".csv")) + ".csv"
        assert len(key.encode()) == 1024
        s3.upload_file(wide, deployed["input"], key)
        orch = wait_executions(sfn, orchestrator, 6)
        loads = wait_executions(sfn, loader, 4)
        mine = [e for e in loads if e["status"] == "FAILED"]
        d = sfn.describe_execution(executionArn=sorted(mine, key=lambda e: e["startDate"])[-1]["executionArn"])
        job_id = json.loads(d["input"])["job"]["job_id"]
        record = json.loads(ddb.get_item(TableName=deployed["table"], Key={"pk": {"S": f"job#{job_id}"}})["Item"]["doc"]["S"])
        message = (record.get("error") or {}).get("message", "")
        checks.ok(record["input"]["uri"].endswith(key) and record["status"] == "failed"
                  and len(message) > 32768 and "no_such_column" in message and "measurement_column_1199" in message,
                  f"1,024-byte key: the job failed and its record keeps the whole {len(message)}-byte error")
        cause = d.get("cause", "")
        try:
            whole = json.loads(cause)
        except ValueError:
            whole = {}
        checks.ok(d["status"] == "FAILED" and d.get("error", "").startswith("ferry.") and len(cause) <= 32768
                  and "the whole message is in the job record" in whole.get("message", ""),
                  f"the execution fails with {d.get('error')}; its cause is JSON of {len(cause)} characters, cut "
                  "where Step Functions' limit demands")
        got = receive(sqs, deployed["events_queue"], 1)
        checks.ok(len(got) == 1 and got[0].get("status") == "failed" and key in json.dumps(got[0])
                  and len((got[0].get("error") or {}).get("message", "")) == len(message),
                  f"failure event: the key and the whole {len(message)}-byte message")
        biggest = max(agent.runs, key=lambda r: r["overrides"])
        checks.ok(biggest["overrides"] <= 8192,
                  f"every task's overrides within ECS's 8 KiB: largest {biggest['overrides']} bytes ({biggest['step']})")

        # 5. A step whose task hangs (no heartbeat, no answer): the state times out, the state
        #    machine stops that ECS task, retries once (lostTaskRetries=1 in this synth), stops the
        #    second one too, and the job ends failed and notified, not stuck as running.
        agent.hang.add(("transform", "stuck/lineitem-hang.tbl"))
        runs_before = len(agent.runs)
        started = time.time()
        s3.upload_file(os.path.join(args.specs, "lineitem", "sample.tbl"), deployed["input"], "stuck/lineitem-hang.tbl")
        orch = wait_executions(sfn, orchestrator, 7, timeout=300)
        loads = wait_executions(sfn, loader, 5, timeout=300)
        hung = [r for r in agent.runs[runs_before:] if r["exit"] == "hung"]
        d = sfn.describe_execution(executionArn=sorted(loads, key=lambda e: e["startDate"])[-1]["executionArn"])
        checks.ok(len(hung) == 2 and all(r["stopped"] and "transform state timed out" in r["stopped"] for r in hung),
                  f"hung transform tasks stopped by the state machine: {[(r['stopped'], r['seconds']) for r in hung]}")
        checks.ok(d["status"] == "FAILED" and d.get("error") == "ferry.TaskLost",
                  f"the execution fails with {d.get('error')} after {time.time() - started:.0f} s")
        job_id = json.loads(d["input"])["job"]["job_id"]
        record = json.loads(ddb.get_item(TableName=deployed["table"], Key={"pk": {"S": f"job#{job_id}"}})["Item"]["doc"]["S"])
        checks.ok(record["status"] == "failed" and record["error"]["name"] == "ferry.TaskLost",
                  f"the job is failed, not stuck: {record['status']}, {record['error']['name']}: {record['error']['message'][:80]}")
        got = receive(sqs, deployed["events_queue"], 1)
        checks.ok([e.get("status") for e in got] == ["failed"], "the timed-out job's failure is notified")

        # 6. Working storage: succeeded jobs left nothing on the EFS stand-in; failed jobs keep their
        #    folders until the hourly sweep task finds them older than the retention.
        jobs = {i["pk"]["S"][4:]: i["status"]["S"] for i in ddb.scan(TableName=deployed["table"])["Items"]
                if i["pk"]["S"].startswith("job#")}
        def job_folders():
            # `specs/` holds the pinned spec versions every job shares; the sweep leaves it.
            return sorted(f for f in os.listdir(work) if os.path.isdir(os.path.join(work, f)) and f != "specs")

        folders = job_folders()
        checks.ok(os.path.isdir(os.path.join(work, "specs")) and len(os.listdir(os.path.join(work, "specs"))) >= 1,
                  f"the routed specs are pinned once per version on EFS: {sorted(os.listdir(os.path.join(work, 'specs')))}")
        failed_ids = sorted(j for j, st in jobs.items() if st == "failed")
        checks.ok(folders == failed_ids,
                  f"EFS after {len(jobs)} jobs: {len(folders)} folders, the failed jobs' "
                  f"({sum(1 for st in jobs.values() if st == 'succeeded')} succeeded jobs left none)")
        sweep = deployed.get("sweep")
        checks.ok(bool(sweep) and sweep["schedule"] == "rate(1 hour)", f"the sweep runs on a schedule: {sweep}")
        sweep_logs = ""
        if sweep:
            container = deployed["task_definitions"][sweep["family"]]
            for older, left in [(None, folders), ("0s", [])]:
                command = list(container["command"])
                if older:
                    command[command.index("--older-than") + 1] = older
                env = agent.env_for_container(sweep["family"])
                r = subprocess.run([args.ferry] + command, env=env, capture_output=True, text=True, timeout=120)
                now = job_folders()
                checks.ok(r.returncode == 0 and now == left and os.path.isdir(os.path.join(work, "specs")),
                          f"`ferry {' '.join(command)}` (the sweep task's command): exit {r.returncode}, "
                          f"{len(now)} job folders left {r.stdout.strip()[:120]}")
                sweep_logs = r.stderr

            # The dashboard's and alarms' metrics come from the tasks' JSON log lines through the
            # template's metric filters: each filter must match lines the real tasks wrote, with
            # a number where it takes its value and its dimensions present.
            lines = []
            for text in [open(r["log"]).read() for r in agent.runs] + [sweep_logs]:
                for line in text.splitlines():
                    try:
                        lines.append(json.loads(line))
                    except ValueError:
                        pass
            seen = {}
            for lid, f in of_type(template, "AWS::Logs::MetricFilter"):
                p = f["Properties"]
                m = re.fullmatch(r'\{ \$\.message = "([^"]+)" \}', p["FilterPattern"])
                t = p["MetricTransformations"][0]
                field = lambda path, rec: rec.get(path[2:]) if isinstance(path, str) and path.startswith("$.") else path
                hits = [rec for rec in lines if m and rec.get("message") == m.group(1)]
                good = [rec for rec in hits if isinstance(field(t["MetricValue"], rec), (int, float))
                        or (not str(t["MetricValue"]).startswith("$.") and str(t["MetricValue"]).isdigit())]
                good = [rec for rec in good if all(field(d["Value"], rec) not in (None, "") for d in t.get("Dimensions", []))]
                seen[t["MetricName"]] = len(good)
            checks.ok(bool(seen) and all(seen.values()),
                      f"every metric filter matches what the tasks log, with its value and dimensions: {seen}")

        # 7. IAM is judged, not assumed: what a role was not granted is refused, for a task's role
        #    (the transform reads no bucket; notify writes no output) and for a state machine's
        #    (the Converter may not run the Loader's sql-processor task).
        def refused(call):
            try:
                call()
                return "allowed"
            except botocore.exceptions.ClientError as e:
                return e.response["Error"]["Code"]

        roles = deployed["roles"]
        family = lambda step: next(f for f, c in deployed["task_definitions"].items() if c["command"][:2] == ["task", step])
        as_role = lambda svc, step: aws(svc, sessions[roles[family(step)]["task"]])
        denied = {
            "transform reads the input bucket": refused(lambda: as_role("s3", "transform").get_object(
                Bucket=deployed["input"], Key="in/2026/11/lineitem.tbl")),
            "notify writes the output bucket": refused(lambda: as_role("s3", "notify").put_object(
                Bucket=out_bucket, Key="ferry/x", Body=b"x")),
            "transform reads the specs": refused(lambda: as_role("s3", "transform").get_object(
                Bucket=specs_uri[5:].split("/", 1)[0], Key=specs_uri[5:].split("/", 1)[1] + "/lineitem/dataset.toml")),
            "transform publishes a job event": refused(lambda: as_role("sns", "transform").publish(
                TopicArn=resolve.refs[next(l for l, _ in of_type(template, "AWS::SNS::Topic") if l.startswith("JobEvents"))],
                Message="{}")),
        }
        checks.ok(all(code in ("AccessDenied", "AccessDeniedException", "AuthorizationError") for code in denied.values()),
                  f"task roles are held to their grants: {denied}")
        converter_role = sfn.describe_state_machine(stateMachineArn=converter)["roleArn"]
        sql_td = next(resolve.refs[l] for l, r in of_type(template, "AWS::ECS::TaskDefinition")
                      if "sqlprocessor" in l.lower())
        probe = sfn.create_state_machine(name=f"probe-{suffix}", roleArn=converter_role, definition=json.dumps({
            "StartAt": "run", "States": {"run": {
                "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask", "End": True,
                "Parameters": {"Cluster": deployed["cluster"], "TaskDefinition": sql_td, "LaunchType": "FARGATE"}}}}))
        sfn.start_execution(stateMachineArn=probe["stateMachineArn"], input="{}")
        ex = wait_executions(sfn, probe["stateMachineArn"], 1)[0]
        d = sfn.describe_execution(executionArn=ex["executionArn"])
        checks.ok(d["status"] == "FAILED" and "AccessDenied" in (d.get("error", "") + d.get("cause", "")),
                  f"the Converter's role may not run the sql-processor task: {d['status']} {d.get('error')} "
                  f"{d.get('cause', '')[:100]}")

        # 8. An execution stopped by hand while its step hangs: Step Functions runs no Catch for it,
        #    so the EventBridge rule on its ABORTED status starts the reaper, which stops the task of
        #    the execution's group and ends the job failed (ferry.ExecutionStopped), with its event.
        #    The emulator does not emit Step Functions status events: the check puts the one AWS sends.
        agent.hang.add(("transform", "stopped/lineitem-stop.tbl"))
        s3.upload_file(os.path.join(args.specs, "lineitem", "sample.tbl"), deployed["input"], "stopped/lineitem-stop.tbl")
        deadline = time.time() + 120
        while time.time() < deadline and not any("lineitem-stop" in src for _, src in agent.hanging):
            time.sleep(0.2)
        running = [e for e in sfn.list_executions(stateMachineArn=loader, statusFilter="RUNNING")["executions"]]
        hung_arn = next((arn for arn, src in agent.hanging if "lineitem-stop" in src), None)
        if running and hung_arn:
            stopped = running[0]
            sfn.stop_execution(executionArn=stopped["executionArn"], error="ops", cause="stopped by hand")
            d = sfn.describe_execution(executionArn=stopped["executionArn"])
            aws("events").put_events(Entries=[{
                "Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
                "Detail": json.dumps({"executionArn": d["executionArn"], "stateMachineArn": loader, "name": d["name"],
                                      "status": "ABORTED", "input": d["input"]}),
            }])
            reaped = wait_executions(sfn, deployed["machines"]["Reaper"], 1, timeout=120)
            reason = agent.wait_stopped(hung_arn, timeout=60)
            job_id = json.loads(d["input"])["job"]["job_id"]
            record = json.loads(ddb.get_item(TableName=deployed["table"], Key={"pk": {"S": f"job#{job_id}"}})["Item"]["doc"]["S"])
            checks.ok(reaped[0]["status"] == "SUCCEEDED" and reason and "its execution was stopped" in reason,
                      f"the stopped execution's hung task was stopped by the reaper ({reaped[0]['status']}): {reason}")
            checks.ok(record["status"] == "failed" and record["error"]["name"] == "ferry.ExecutionStopped",
                      f"its job ended {record['status']}: {record.get('error', {}).get('name')}: "
                      f"{record.get('error', {}).get('message', '')[:80]}")
            got = receive(sqs, deployed["events_queue"], 1)
            checks.ok([e.get("status") for e in got] == ["failed"], "the stopped job's failure is notified")
        else:
            checks.ok(False, f"a Loader execution hanging in transform to stop: {running}, {agent.hanging}")
        # 9. The fast path: an object of at most lambdaMaxBytes (the synthesized Choice's number)
        #    runs its whole job in one invocation of the function; one byte more takes ECS. An
        #    event re-delivered while that job runs loads nothing; an invocation that outlives
        #    the function's timeout is killed and its object finished by the ECS path, with the
        #    same artifacts as the Lambda path made from the same bytes.
        if lambdas:
            fast_path_checks(checks, template, resolve, deployed, lambdas, agent, aws, db_url, args.specs, out_bucket)
        else:
            checks.ok(False, "the template has the fast path's function (lambdaMaxBytes > 0 in this synth)")
        # 10. Inputs larger than their split_size: transform (convert) outputs the parts, the
        #     workflow's Distributed Map runs `task transform|convert --part K` as one ECS task per
        #     part, then sql-processor loads them all as one load (validate reads every part back).
        n_load = len(sfn.list_executions(stateMachineArn=loader)["executions"])
        n_conv = len(sfn.list_executions(stateMachineArn=converter)["executions"])
        ran_before = len(agent.runs)
        s3.upload_file(os.path.join(args.specs, "lineitem", "sample.tbl"), deployed["input"], "split/items-split.tbl")
        s3.upload_file(split_orders, deployed["input"], "convert/split/orders-split.csv")
        loads = wait_executions(sfn, loader, n_load + 1, timeout=300)
        converts = wait_executions(sfn, converter, n_conv + 1, timeout=300)
        newest = lambda ex: max(ex, key=lambda e: e["startDate"])
        parts = [" ".join(r.get("command", [])) for r in agent.runs[ran_before:] if "--part" in r.get("command", [])]
        checks.ok(newest(loads)["status"] == "SUCCEEDED" and newest(converts)["status"] == "SUCCEEDED",
                  f"split inputs: Loader {newest(loads)['status']}, Converter {newest(converts)['status']}")
        checks.ok(sum(" transform " in f" {c} " for c in parts) >= 2 and sum(" convert " in f" {c} " for c in parts) >= 2,
                  f"the Distributed Maps ran each part as its own ECS task: {len(parts)} part tasks")
        n = int(psql(db_url, "SELECT count(*) FROM public.items_split"))
        ledger = int(psql(db_url, "SELECT count(*) FROM ferry.loads WHERE target = 'public.items_split'"))
        checks.ok(n == rows_in_sample and ledger == 1,
                  f"public.items_split has {n} rows (the file has {rows_in_sample}) from {ledger} ledger entry")
        finished = True
    finally:
        enforce_iam(endpoint, False)
        if lambdas:
            lambdas.stop()
            for box in lambdas.sandboxes:
                if checks.failed or not finished:
                    say(f"--- Lambda sandbox {box['n']}")
                    sys.stderr.write(open(box["log"], errors="replace").read()[-3000:])
        agent.stop_flag.set()
        for r in agent.runs:
            if r["exit"] != 0:
                say(f"task {r['step']} exited {r['exit']}; log: {r['log']}")
        if checks.failed or not finished:
            for r in agent.runs:
                say(f"--- {r['step']} (exit {r['exit']}, {r['seconds']} s)")
                sys.stderr.write(open(r["log"]).read()[-3000:])
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        psql(args.database_url, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    if checks.failed:
        say(f"{len(checks.failed)} check(s) failed")
        return 1
    say(f"all checks passed; {len(agent.runs)} ECS tasks run")
    return 0


def receive(sqs, url, count, timeout=30):
    got, deadline = [], time.time() + timeout
    while len(got) < count and time.time() < deadline:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in msgs:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


if __name__ == "__main__":
    sys.exit(main())
