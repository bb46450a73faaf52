"""The synthesized template, created in the local AWS emulator: its resources as
the checks of run_synthesized.py need them (buckets, the jobs table, topics,
queues, the secret, network ids, the ECS cluster and task definitions, the state
machines with their synthesized ASL and roles, the EventBridge rules, the fast
path's function), then its IAM roles with exactly their synthesized policies, and
moto's IAM enforcement; and the few helpers the checks share (waiting for
executions, psql).
"""

import json
import re
import subprocess
import time
import urllib.request

REGION = "us-east-1"
ACCOUNT = "123456789012"


# ---------------------------------------------------------------- template → emulator

class Resolver:
    """CloudFormation intrinsic functions over the physical ids created here."""

    def __init__(self):
        # Set once everything the emulator creates exists: what is left (KMS keys, EFS, log groups,
        # ECR) gets a placeholder ARN in IAM policies, whose grants the stack's rule tests judge.
        self.placeholders = False
        self.refs = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                     "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "Ferry"}

    def __call__(self, v):
        if isinstance(v, list):
            return [self(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                if arg not in self.refs:
                    if self.placeholders:
                        return f"not-emulated-{arg}"
                    raise KeyError(f"Ref {arg}: not created locally")
                return self.refs[arg]
            if k == "Fn::GetAtt":
                key = f"{arg[0]}.{arg[1]}"
                if key not in self.refs:
                    if self.placeholders:
                        return f"arn:aws:local:{REGION}:{ACCOUNT}:not-emulated/{key}"
                    raise KeyError(f"GetAtt {key}: not created locally")
                return self.refs[key]
            if k == "Fn::Join":
                return arg[0].join(str(self(p)) for p in arg[1])
            if k == "Fn::Select":
                return self(arg[1])[int(arg[0])]
            if k == "Fn::Split":
                return self(arg[1]).split(arg[0])
            if k == "Fn::Sub" and isinstance(arg, str):
                # ${Name} and ${Name.Attr}, as CloudFormation substitutes them (image asset URIs).
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self(
                    {"Fn::GetAtt": m.group(1).split(".", 1)} if "." in m.group(1) else {"Ref": m.group(1)})), arg)
        return {k: self(x) for k, x in v.items()}


def of_type(template, kind):
    return [(k, r) for k, r in template["Resources"].items() if r["Type"] == kind]


def camel(v):
    if isinstance(v, dict):
        return {k[:1].lower() + k[1:]: camel(x) for k, x in v.items()}
    if isinstance(v, list):
        return [camel(x) for x in v]
    return v


def deploy(template, aws, resolve, pg, suffix):
    """Creates the template's resources in the emulator; returns what the checks need."""
    s3, ddb, sns, sqs = aws("s3"), aws("dynamodb"), aws("sns"), aws("sqs")
    ec2, ecs, sm, sfn, events = aws("ec2"), aws("ecs"), aws("secretsmanager"), aws("stepfunctions"), aws("events")
    out = {}
    # Buckets; the ones the EventBridge custom resource names get notifications.
    eventbridge = {r["Properties"]["BucketName"]["Ref"] for _, r in of_type(template, "Custom::S3BucketNotifications")
                   if "EventBridgeConfiguration" in r["Properties"]["NotificationConfiguration"]}
    for lid, r in of_type(template, "AWS::S3::Bucket"):
        name = f"ferry-{lid.lower()[:30]}-{suffix}"
        s3.create_bucket(Bucket=name)
        resolve.refs[lid], resolve.refs[f"{lid}.Arn"] = name, f"arn:aws:s3:::{name}"
        if r["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if lid in eventbridge:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}})
            out["input"] = name
    # The jobs table, with the key schema and index exactly as synthesized.
    for lid, r in of_type(template, "AWS::DynamoDB::Table"):
        p = r["Properties"]
        name = f"ferry-jobs-{suffix}"
        ddb.create_table(TableName=name, AttributeDefinitions=p["AttributeDefinitions"], KeySchema=p["KeySchema"],
                         BillingMode=p["BillingMode"],
                         GlobalSecondaryIndexes=[{k: g[k] for k in ("IndexName", "KeySchema", "Projection")}
                                                 for g in p.get("GlobalSecondaryIndexes", [])])
        resolve.refs[lid], resolve.refs[f"{lid}.Arn"] = name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        out["table"] = name
    for lid, _ in of_type(template, "AWS::SNS::Topic"):
        arn = sns.create_topic(Name=f"ferry-{lid.lower()[:30]}-{suffix}")["TopicArn"]
        resolve.refs[lid] = arn
        if not lid.startswith("JobEvents"):
            continue  # the ops topic: alarms and failed tasks, which the emulator does not raise
        # A subscriber, to receive the job events the way a consumer would.
        url = sqs.create_queue(QueueName=f"ferry-events-listener-{suffix}")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
        out["events_queue"] = url
    for lid, _ in of_type(template, "AWS::SQS::Queue"):
        url = sqs.create_queue(QueueName=f"ferry-{lid.lower()[:40]}-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolve.refs[lid], resolve.refs[f"{lid}.Arn"] = url, arn
        out["dead_letters"] = url
    # The database secret: the local PostgreSQL, in the shape RDS writes.
    secret = json.dumps({"engine": "postgres", "host": pg["host"], "port": pg["port"], "username": pg["user"],
                         "password": pg["password"], "dbname": pg["dbname"]})
    for lid, _ in of_type(template, "AWS::SecretsManager::Secret"):
        arn = sm.create_secret(Name=f"ferry-db-{suffix}", SecretString=secret)["ARN"]
        resolve.refs[lid] = arn
        for alid, a in of_type(template, "AWS::SecretsManager::SecretTargetAttachment"):
            if a["Properties"]["SecretId"] == {"Ref": lid}:
                resolve.refs[alid] = arn
    # Network: the VPC, subnets and security groups the task states name.
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    for lid, _ in of_type(template, "AWS::EC2::VPC"):
        resolve.refs[lid] = vpc
    for i, (lid, r) in enumerate(of_type(template, "AWS::EC2::Subnet")):
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
        resolve.refs[lid] = sid
    for lid, r in of_type(template, "AWS::EC2::SecurityGroup"):
        gid = ec2.create_security_group(GroupName=f"{lid}-{suffix}", Description="ferry", VpcId=vpc)["GroupId"]
        resolve.refs[f"{lid}.GroupId"] = gid
    for lid, _ in of_type(template, "AWS::Logs::LogGroup"):
        resolve.refs[lid] = f"/ferry/{lid}"
    # Roles are created with their policies once everything they name exists (see grant()).
    for lid, _ in of_type(template, "AWS::IAM::Role"):
        name = f"{lid[:46]}-{suffix}"
        resolve.refs[lid], resolve.refs[f"{lid}.Arn"] = name, f"arn:aws:iam::{ACCOUNT}:role/{name}"
    for lid, _ in of_type(template, "AWS::EFS::FileSystem"):
        resolve.refs[lid] = "fs-local"
    for lid, _ in of_type(template, "AWS::EFS::AccessPoint"):
        resolve.refs[lid] = "fsap-local"
    # ECS: the cluster and one task definition per step, as synthesized.
    for lid, _ in of_type(template, "AWS::ECS::Cluster"):
        c = ecs.create_cluster(clusterName=f"ferry-{suffix}")["cluster"]
        resolve.refs[lid], resolve.refs[f"{lid}.Arn"] = c["clusterName"], c["clusterArn"]
        out["cluster"] = c["clusterArn"]
    out["task_definitions"] = {}
    for lid, r in of_type(template, "AWS::ECS::TaskDefinition"):
        p = resolve(r["Properties"])
        containers = camel(p["ContainerDefinitions"])
        for c in containers:
            c["memory"] = int(p["Memory"])
        out.setdefault("roles", {})[p["Family"]] = {"task": p["TaskRoleArn"], "execution": p["ExecutionRoleArn"]}
        arn = ecs.register_task_definition(
            family=p["Family"], containerDefinitions=containers, cpu=p["Cpu"], memory=p["Memory"],
            networkMode=p["NetworkMode"], requiresCompatibilities=p["RequiresCompatibilities"],
            taskRoleArn=p["TaskRoleArn"], executionRoleArn=p["ExecutionRoleArn"],
        )["taskDefinition"]["taskDefinitionArn"]
        resolve.refs[lid] = arn
        out["task_definitions"][p["Family"]] = containers[0]
    # The fast path's function: named here, created by create_functions() once its role exists.
    out["functions"] = {}
    for lid, r in of_type(template, "AWS::Lambda::Function"):
        if r["Properties"].get("PackageType") != "Image":
            continue  # CDK's own custom-resource handlers: they do not run here
        name = f"ferry-{lid.lower()[:40]}-{suffix}"
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        resolve.refs[lid], resolve.refs[f"{lid}.Arn"] = name, arn
        out["functions"][lid] = {"name": name, "arn": arn}
    # State machines, children first (the orchestrator and the backfill name them).
    machines = dict(of_type(template, "AWS::StepFunctions::StateMachine"))
    out["machines"] = {}
    while machines:
        progressed = False
        for lid, r in list(machines.items()):
            try:
                definition = resolve(r["Properties"]["DefinitionString"])
            except KeyError:
                continue
            name = f"{lid}-{suffix}"
            arn = sfn.create_state_machine(name=name, definition=definition,
                                           roleArn=resolve(r["Properties"]["RoleArn"]))["stateMachineArn"]
            resolve.refs[lid], resolve.refs[f"{lid}.Name"] = arn, name
            out["machines"][lid.split("StateMachine")[0]] = arn
            del machines[lid]
            progressed = True
        if not progressed:
            raise SystemExit(f"state machines reference something not created: {list(machines)}")
    # The trigger.
    for lid, r in of_type(template, "AWS::Events::Rule"):
        p = resolve(r["Properties"])
        if "ScheduleExpression" in p:
            # The hourly working-storage sweep: an ECS task the checks run themselves (the
            # emulator's EventBridge does not start ECS tasks).
            family = next(f for f, c in out["task_definitions"].items()
                          if p["Targets"][0]["EcsParameters"]["TaskDefinitionArn"].split("/")[-1].split(":")[0] == f)
            out["sweep"] = {"schedule": p["ScheduleExpression"], "family": family}
            continue
        name = f"ferry-{lid.lower()[:40]}-{suffix}"
        events.put_rule(Name=name, EventPattern=json.dumps(p["EventPattern"]), State="ENABLED")
        events.put_targets(Rule=name, Targets=[
            {"Id": t["Id"], "Arn": t["Arn"], **({"RoleArn": t["RoleArn"]} if "RoleArn" in t else {}),
             **({"DeadLetterConfig": t["DeadLetterConfig"]} if "DeadLetterConfig" in t else {}),
             **({"RetryPolicy": t["RetryPolicy"]} if "RetryPolicy" in t else {})}
            for t in p["Targets"]])
    return out


def grant(template, aws, resolve, suffix):
    """Creates the template's IAM roles with exactly their synthesized policies, an admin for the
    harness, and a session of every role; returns {role arn: credentials}, plus "admin"."""
    iam, sts = aws("iam"), aws("sts")
    resolve.placeholders = True
    sessions = {}
    for lid, r in of_type(template, "AWS::IAM::Role"):
        p = r["Properties"]
        name = resolve.refs[lid]
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(resolve(p["AssumeRolePolicyDocument"])))
        for inline in p.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=inline["PolicyName"],
                                PolicyDocument=json.dumps(resolve(inline["PolicyDocument"])))
        # ManagedPolicyArns: only the CDK's custom-resource Lambdas have them, and they do not run here.
    for lid, r in of_type(template, "AWS::IAM::Policy"):
        p = r["Properties"]
        for role in p.get("Roles", []):
            iam.put_role_policy(RoleName=resolve(role), PolicyName=lid,
                                PolicyDocument=json.dumps(resolve(p["PolicyDocument"])))
    for lid, _ in of_type(template, "AWS::IAM::Role"):
        arn = resolve.refs[f"{lid}.Arn"]
        c = sts.assume_role(RoleArn=arn, RoleSessionName="ferry-local")["Credentials"]
        sessions[arn] = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                         "aws_session_token": c["SessionToken"]}
    # The harness itself (a producer putting objects, the checks reading state) is an admin.
    user = f"ferry-harness-{suffix}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sessions["admin"] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    return sessions


def create_functions(template, aws, resolve, deployed):
    """Creates the fast path's function as synthesized (its role exists now, see grant()); adds its
    role, timeout, reserved concurrency and environment to deployed["functions"]."""
    lam = aws("lambda")
    for lid, f in deployed["functions"].items():
        p = resolve(template["Resources"][lid]["Properties"])
        env = p.get("Environment", {}).get("Variables", {})
        lam.create_function(FunctionName=f["name"], Role=p["Role"], PackageType="Image",
                            Code={"ImageUri": p["Code"]["ImageUri"]}, Timeout=int(p["Timeout"]),
                            MemorySize=int(p["MemorySize"]), Environment={"Variables": env},
                            ImageConfig=p.get("ImageConfig", {}))
        f.update(role=p["Role"], timeout=int(p["Timeout"]), memory=int(p["MemorySize"]), environment=env,
                 command=p.get("ImageConfig", {}).get("Command", []),
                 concurrency=int(p.get("ReservedConcurrentExecutions", 1)))


def enforce_iam(endpoint, on):
    """moto's IAM enforcement: every request after this one is judged against its caller's policies."""
    req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=(b"0" if on else b"inf"), method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()


# ---------------------------------------------------------------- shared by the checks

# What the stack sets PGSSLROOTCERT to (cdk/lib/ferry-stack.ts RDS_CA): the image's RDS CA bundle.
RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"


def wait_executions(sfn, machine, count, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ex = sfn.list_executions(stateMachineArn=machine)["executions"]
        done = [e for e in ex if e["status"] != "RUNNING"]
        if len(ex) >= count and len(done) == len(ex):
            return ex
        time.sleep(0.3)
    raise SystemExit(f"timeout: {machine} has {sfn.list_executions(stateMachineArn=machine)['executions']}")


def psql(url, sql):
    return subprocess.run(["psql", url, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True,
                          text=True, check=True).stdout.strip()
