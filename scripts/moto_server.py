#!/usr/bin/env python3
"""The local AWS emulator for ferry's tests: moto's server, with the gaps of moto
5.2.5 that keep a synthesized architecture from running (or from being judged by
IAM) filled in.

  python scripts/moto_server.py -H 127.0.0.1 -p 54567

1. Step Functions `ecs:runTask` and `states:startExecution` states hand boto3
   the ASL's PascalCase parameters (`Cluster`, `Overrides.ContainerOverrides[]
   .Command`, `StateMachineArn`, `Input`, …) and read PascalCase back
   (`Tasks[0].TaskArn`, `ExecutionArn`); moto's normalisation hooks for them are
   empty. Both APIs' members are all camelCase, so the mapping is mechanical
   both ways. The same holds for `aws-sdk:ecs:*` states (listTasks, stopTask).
2. An EventBridge rule whose target is a state machine raises
   NotImplementedError (PutEvents and S3's notifications fail). Here it starts
   an execution with the event as input, as AWS does.

3. A task whose heartbeats stop fails with States.Timeout instead of AWS's
   States.HeartbeatTimeout (which the state machines retry differently).

   And SendTaskFailure's cause is dropped (a Catch's $.Cause was always empty).

4. Fault injection for tests (not an AWS feature): `POST /_ferry/faults` with a
   JSON list of faults makes the next matching requests fail — each fault has
   `method` and `path` (a prefix) or `target` (the X-Amz-Target of JSON APIs
   such as DynamoDB) and optionally `body` (a substring of the request body,
   e.g. a table name), the `status`, the error `code` and a `count`;
   `GET /_ferry/faults` returns them with how often each was hit; `DELETE`
   clears them. Throttling and 5xx errors are how the SDKs' retries are proved.

5. IAM, when a test turns moto's enforcement on (`POST /moto-api/reset-auth` with
   0): moto judges the Resource of a policy statement only for S3 and SQS and
   asks every other service's policies about "*", so a statement scoped to a
   table, topic, secret, state machine or task definition (as every synthesized
   one is) never matches. Here DynamoDB, SNS, Secrets Manager, Step Functions,
   ECS and EventBridge requests name the ARN AWS authorizes them against.
   Step Functions' service integrations sign with fixed keys; here each call is
   made with the credentials of the executing state machine's role (as AWS
   assumes it), RunTask also needs iam:PassRole on the task definition's roles,
   and an EventBridge rule starts an execution only if its target's role may.
   Without enforcement all of this is inert.

6. Lambda functions run in Docker in moto (and an image function not at all). Here
   `POST /_ferry/lambda` with {"function": NAME, "url": URL, "timeout": SECONDS}
   sends that function's invocations to a Lambda Invoke API at URL instead (the
   tests run `cargo lambda watch`, whose runtime API the real `ferry lambda`
   polls), answered as Lambda answers: a function error with
   X-Amz-Function-Error and its errorType, an invocation that outlives its
   timeout (kept here) as Sandbox.Timedout. And an invocation is judged by IAM as
   lambda:InvokeFunction on the function's ARN.

7. DynamoDB's TransactWriteItems is not atomic between threads: it deep-copies
   the tables it touches, applies its items one by one and, when a condition
   fails, puts the copies back, erasing whatever another request wrote in
   between. Two workers creating the same job at once could both succeed (the
   loser's rollback deletes the winner's idempotency key; its retry then
   finds no key and writes a second job): 2 of 200 three-way races here, and
   a re-delivered event in the workflow test became a second job. DynamoDB
   serializes conflicting transactions; here every
   DynamoDB operation takes one lock, so each request sees and leaves a whole
   state.

Everything else is moto as published. scripts/aws.sh starts this.
"""

import json
import sys
import uuid


def _rekey(value, first):
    """`value` with every dict key's first letter passed through `first` (str.lower / str.upper)."""
    if isinstance(value, dict):
        return {(first(k[:1]) + k[1:]): _rekey(v, first) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekey(v, first) for v in value]
    return value


def _replace(target, new):
    target.clear()
    target.update(new)


def patch_task_states():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs,
        state_task_service_sfn as sfn,
    )

    for cls in (ecs.StateTaskServiceEcs, sfn.StateTaskServiceSfn):
        own = cls._normalise_parameters  # the SFN one turns an object Input into JSON text first

        def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None, _own=own):
            _own(self, parameters, boto_service_name, service_action_name)
            if service_action_name is None:
                _replace(parameters, _rekey(parameters, str.lower))

        def normalise_response(self, response, boto_service_name=None, service_action_name=None):
            if isinstance(response, dict):
                _replace(response, _rekey(response, str.upper))

        cls._normalise_parameters = normalise_parameters
        cls._normalise_response = normalise_response

    # The same gap in `arn:aws:states:::aws-sdk:ecs:*` states (e.g. ecs:listTasks and
    # ecs:stopTask, which stop a timed-out step's task): PascalCase in, PascalCase out, as AWS's
    # SDK integrations speak; only for ECS, whose members are all camelCase in boto.
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as sdk,
    )

    own_eval = sdk.StateTaskServiceAwsSdk._eval_service_task

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_name() != "ecs":
            return own_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        _replace(normalised_parameters, _rekey(normalised_parameters, str.lower))
        own_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        response = env.stack.pop()
        env.stack.append(_rekey(response, str.upper))

    sdk.StateTaskServiceAwsSdk._eval_service_task = eval_service_task


def patch_task_failure_cause():
    """SendTaskFailure's cause reaches the state machine (moto's handler drops it, so a Catch's
    $.Cause and the execution's cause were always empty)."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self):
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def patch_heartbeat_timeouts():
    """A .waitForTaskToken state whose task stops sending heartbeats fails with
    States.HeartbeatTimeout, as in AWS; moto reports every timeout as States.Timeout."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as base,
        state_task_service_callback as callback,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

    own = callback.StateTaskServiceCallback._from_error

    def from_error(self, env, ex):
        event = own(self, env, ex)
        if isinstance(ex, HeartbeatTimeoutError):
            name = StatesErrorNameType.StatesHeartbeatTimeout
            event.error_name = StatesErrorName(typ=name)
            details = (event.event_details or {}).get("taskTimedOutEventDetails")
            if details is not None:
                details["error"] = name.to_name()
        return event

    callback.StateTaskServiceCallback._from_error = from_error
    del base


def patch_events_to_states():
    from moto.events import models
    from moto.utilities.arns import parse_arn

    original = models.Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        targets = list(self.targets)
        to_states = [t for t in targets if parse_arn(t["Arn"]).service == "states"]
        self.targets = [t for t in targets if t not in to_states]
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = targets
        if not to_states or not self.event_pattern.matches_event(original_event):
            return
        from moto.stepfunctions.responses import get_backend

        for target in to_states:
            if _enforcing() and not _role_permits(target.get("RoleArn", ""), "states:StartExecution", target["Arn"]):
                print(f"AccessDenied: rule {self.name}: {target.get('RoleArn')} may not start {target['Arn']}",
                      file=sys.stderr, flush=True)
                continue  # AWS sends it to the rule's dead-letter queue; the execution never starts
            arn = parse_arn(target["Arn"])
            event = dict(original_event)
            if "Input" in target:
                event = json.loads(target["Input"])
            get_backend(arn.account, arn.region).start_execution(
                target["Arn"], f"event-{uuid.uuid4()}", json.dumps(event)
            )

    models.Rule.send_to_targets = send_to_targets


# ---------------------------------------------------------------- 5. IAM

def _enforcing():
    from moto import settings

    return settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf")


def _role_permits(role_arn, action, resource):
    """Whether the role's identity policies allow `action` on `resource` (moto's evaluator)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends

    iam = iam_backends[role_arn.split(":")[4]]["aws"]
    name = role_arn.split("/")[-1]
    try:
        policies = [iam.get_role_policy(name, p)[1] for p in iam.list_role_policies(name)]
    except Exception:
        return False  # no such role: nothing is allowed
    policies += iam.list_attached_role_policies(name)[0]
    verdicts = [IAMPolicy(p).is_action_permitted(action, resource) for p in policies]
    return PermissionResult.PERMITTED in verdicts and PermissionResult.DENIED not in verdicts


_SESSIONS = {}


def _credentials_of(role_arn):
    """Session credentials of the role, as Step Functions gets them by assuming it."""
    from moto.sts.models import sts_backends

    if role_arn not in _SESSIONS:
        role = sts_backends[role_arn.split(":")[4]]["aws"].assume_role(
            region_name="us-east-1", role_session_name="states", role_arn=role_arn,
            policy=None, duration=43200, external_id=None,
        )
        _SESSIONS[role_arn] = (role.access_key_id, role.secret_access_key, role.session_token)
    return _SESSIONS[role_arn]


def _params(response):
    params = getattr(response, "params", None)
    if isinstance(params, dict) and params:
        return params
    if isinstance(response.body, dict):
        return response.body
    try:
        return json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {k: v[0] for k, v in response.querystring.items()}


def _first(value, *path):
    for step in path:
        if isinstance(value, list):
            value = value[0] if value else None
        elif isinstance(value, dict):
            value = value.get(step) if step != "*" else next(iter(value.values()), None)
        if value is None:
            return None
    return value


def _resource(self):
    """The ARN AWS authorizes this request against ("*" where it has none)."""
    p, action = _params(self), self._get_action()
    region, account = self.region, self.current_account
    arn = lambda service, rest: f"arn:aws:{service}:{region}:{account}:{rest}"
    service = type(self).__name__
    if service == "DynamoHandler":
        table = p.get("TableName") or _first(p.get("TransactItems"), 0, "*", "TableName") \
            or next(iter(p.get("RequestItems") or {}), None)
        if not table:
            return "*"
        index = p.get("IndexName")
        return arn("dynamodb", f"table/{table}" + (f"/index/{index}" if index else ""))
    if service == "SNSResponse":
        return p.get("TopicArn") or p.get("TargetArn") or "*"
    if service == "SecretsManagerResponse":
        secret = p.get("SecretId") or "*"
        if secret != "*" and not secret.startswith("arn:"):
            from moto.secretsmanager.models import secretsmanager_backends

            found = secretsmanager_backends[account][region].secrets.get(secret)
            secret = found.arn if found is not None else secret
        return secret
    if service == "StepFunctionResponse":
        return p.get("stateMachineArn") or p.get("executionArn") or "*"
    if service == "EC2ContainerServiceResponse":
        cluster = (p.get("cluster") or "default").split("/")[-1]
        if action == "RunTask":
            # IAM judges the revision that runs: a family alone means its latest revision.
            from moto.ecs.models import ecs_backends

            try:
                return ecs_backends[account][region].describe_task_definition(p.get("taskDefinition") or "").arn
            except Exception:
                return "*"
        task = p.get("task") or _first(p.get("tasks"), 0)
        if task:
            return task if task.startswith("arn:") else arn("ecs", f"task/{cluster}/{task}")
        return "*"
    if service == "LambdaResponse":
        # /2015-03-31/functions/<name or ARN>/invocations
        import re
        from urllib.parse import unquote

        m = re.search(r"/functions/([^/]+)/", unquote(self.path))
        if not m:
            return "*"
        name = m.group(1)
        return name if name.startswith("arn:") else arn("lambda", f"function:{name}")
    if service == "EventsHandler":
        if action == "PutEvents":
            bus = _first(p.get("Entries"), 0, "EventBusName") or "default"
            return bus if bus.startswith("arn:") else arn("events", f"event-bus/{bus}")
        if p.get("Rule") or p.get("Name"):
            return arn("events", f"rule/{p.get('Rule') or p.get('Name')}")
    return "*"


def patch_iam():
    import importlib
    import pkgutil

    import boto3
    from botocore.config import Config
    from moto.dynamodb.responses import DynamoHandler
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.events.responses import EventsHandler
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sns.responses import SNSResponse
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.awslambda.responses import LambdaResponse

    for cls in (DynamoHandler, SNSResponse, SecretsManagerResponse, StepFunctionResponse,
                EC2ContainerServiceResponse, EventsHandler, LambdaResponse):
        cls._determine_resource = _resource

    # DynamoDB has no IAM action for transactions: AWS authorizes each item as its own action
    # (Put → dynamodb:PutItem, …) on its own table.
    own_authorize = DynamoHandler._authenticate_and_authorize_normal_action
    per_item = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}

    def authorize(self, resource="*"):
        if self._get_action() not in ("TransactWriteItems", "TransactGetItems"):
            return own_authorize(self, resource)
        for item in _params(self).get("TransactItems") or []:
            (kind, body), = item.items()
            self._get_action = lambda action=per_item[kind]: action
            try:
                own_authorize(self, f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{body['TableName']}")
            finally:
                del self._get_action

    DynamoHandler._authenticate_and_authorize_normal_action = authorize

    # Lambda's Invoke API is authorized as lambda:InvokeFunction (moto asks about lambda:Invoke).
    own_lambda_authorize = LambdaResponse._authenticate_and_authorize_normal_action

    def authorize_lambda(self, resource="*"):
        if self._get_action() != "Invoke":
            return own_lambda_authorize(self, resource)
        self._get_action = lambda: "InvokeFunction"
        try:
            own_lambda_authorize(self, resource)
        finally:
            del self._get_action

    LambdaResponse._authenticate_and_authorize_normal_action = authorize_lambda

    # A refusal of a JSON-protocol request (DynamoDB, ECS, Step Functions, Secrets Manager, …)
    # answers in JSON, as AWS does, so an SDK reads its code and message.
    from moto.core.exceptions import JsonRESTError
    from moto.iam.access_control import IAMRequest, S3IAMRequest

    from moto.iam.access_control import IAMRequestBase

    own_check = IAMRequestBase.check_action_permitted

    def check_action_permitted(self, resource):
        self._ferry_resource = resource
        own_check(self, resource)

    IAMRequestBase.check_action_permitted = check_action_permitted
    own_denied = IAMRequest._raise_access_denied

    def raise_access_denied(self):
        message = (f"User: {self._access_key.arn} is not authorized to perform: {self._action} "
                   f"on resource: {getattr(self, '_ferry_resource', '*')}")
        print(f"IAM denied: {message}", file=sys.stderr, flush=True)
        if self._headers.get("X-Amz-Target"):
            raise JsonRESTError("AccessDeniedException", message)
        own_denied(self)

    IAMRequest._raise_access_denied = raise_access_denied
    own_s3_denied = S3IAMRequest._raise_access_denied

    def raise_s3_access_denied(self):
        print(f"IAM denied: {self._access_key.arn} may not {self._action} on "
              f"{getattr(self, '_ferry_resource', '*')}", file=sys.stderr, flush=True)
        own_s3_denied(self)

    S3IAMRequest._raise_access_denied = raise_s3_access_denied

    # What is judged is authorization, not SigV4: moto re-signs a form-encoded request from its
    # parsed parameters, which differs from the bytes the Rust SDK signed (SNS Publish of a JSON
    # message fails its check), so signatures are not re-checked; the access key must still
    # belong to a user or a session, and an unknown one is refused.
    IAMRequestBase.check_signature = lambda self: None
    own_invalid = IAMRequest._raise_invalid_access_key

    def raise_invalid_access_key(self, reason):
        print(f"IAM refused an unknown access key ({reason}) for {self._action}", file=sys.stderr, flush=True)
        own_invalid(self, reason)

    IAMRequest._raise_invalid_access_key = raise_invalid_access_key

    # Step Functions' integrations: the state machine's role, not fixed keys.
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.settings import moto_server_port

    own = boto_client.boto_client_for

    def boto_client_for(region, service, state_credentials=None):
        role = getattr(state_credentials, "role_arn", None)
        if not _enforcing() or not role:
            return own(region, service, state_credentials)
        key, secret, token = _credentials_of(role)
        client = boto3.client(
            service_name=service, region_name=region, endpoint_url=f"http://localhost:{moto_server_port()}",
            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
            config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}),
        )
        if service == "ecs":
            _checks_pass_role(client, role)
        return client

    import moto.stepfunctions.parser.asl as asl

    for info in pkgutil.walk_packages(asl.__path__, asl.__name__ + ".", onerror=lambda name: None):
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue  # parts of the LocalStack port moto does not ship
        if getattr(module, "boto_client_for", None) is own:
            module.boto_client_for = boto_client_for


def _checks_pass_role(client, role):
    """RunTask by a state machine: ECS also requires iam:PassRole on the task definition's roles."""
    from botocore.exceptions import ClientError
    from moto.ecs.models import ecs_backends

    run_task = client.run_task

    def checked(**kwargs):
        account, region = role.split(":")[4], client.meta.region_name
        td = ecs_backends[account][region].describe_task_definition(kwargs.get("taskDefinition"))
        for passed in (getattr(td, "task_role_arn", None), getattr(td, "execution_role_arn", None)):
            if passed and not _role_permits(role, "iam:PassRole", passed):
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message":
                                             f"{role} is not authorized to perform iam:PassRole on {passed}"}},
                                  "RunTask")
        return run_task(**kwargs)

    client.run_task = checked


# Function name → {"url": its Invoke API, "timeout": seconds} (see 6. above).
LAMBDAS = {}


def patch_lambda_invoke():
    import urllib.error
    import urllib.request

    from moto.awslambda.models import LambdaBackend

    own = LambdaBackend.invoke

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        fn = self.get_function(function_name, qualifier)
        target = LAMBDAS.get(fn.function_name)
        if target is None:
            return own(self, function_name, qualifier, body, headers, response_headers)
        data = body if isinstance(body, bytes) else (body or "{}").encode()
        req = urllib.request.Request(target["url"], data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        timed_out = json.dumps({"errorType": "Sandbox.Timedout",
                                "errorMessage": f"Task timed out after {target['timeout']:.2f} seconds"}).encode()
        try:
            # The function's timeout is kept here: the emulator's own applies to its idle polls too.
            with urllib.request.urlopen(req, timeout=target["timeout"]) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            payload = e.read()
            response_headers["x-amz-function-error"] = "Unhandled"
            return timed_out if e.code in (408, 504) else payload
        except (TimeoutError, urllib.error.URLError) as e:
            if not isinstance(e, TimeoutError) and not isinstance(getattr(e, "reason", None), TimeoutError):
                raise
            response_headers["x-amz-function-error"] = "Unhandled"
            return timed_out

    LambdaBackend.invoke = invoke


FAULTS = []


def _fault_for(environ):
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    body = None
    if any("body" in f for f in FAULTS):
        import io

        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    for fault in FAULTS:
        if "body" in fault and fault["body"].encode() not in (body or b""):
            continue
        if fault["hits"] >= fault.get("count", 1):
            continue
        if "target" in fault and fault["target"] != target:
            continue
        if "method" in fault and fault["method"] != method:
            continue
        if "path" in fault and not path.startswith(fault["path"]):
            continue
        fault["hits"] += 1
        return fault
    return None


def _error_response(fault, environ, start_response):
    status = int(fault.get("status", 503))
    code = fault.get("code", "SlowDown")
    message = fault.get("message", "injected by the ferry test emulator")
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message}).encode()
        kind = "application/x-amz-json-1.0"
    else:
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>"
        ).encode()
        kind = "application/xml"
    start_response(
        f"{status} {code}",
        [("Content-Type", kind), ("Content-Length", str(len(body)))],
    )
    return [body]


def patch_fault_injection():
    import moto.server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class WithFaults(DomainDispatcherApplication):
        def __call__(self, environ, start_response):
            if environ.get("PATH_INFO") == "/_ferry/lambda" and environ.get("REQUEST_METHOD") == "POST":
                size = int(environ.get("CONTENT_LENGTH") or 0)
                target = json.loads(environ["wsgi.input"].read(size) or b"{}")
                LAMBDAS[target["function"]] = {"url": target["url"], "timeout": float(target.get("timeout", 900))}
                body = json.dumps(LAMBDAS).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            if environ.get("PATH_INFO") == "/_ferry/faults":
                method = environ.get("REQUEST_METHOD")
                if method == "POST":
                    size = int(environ.get("CONTENT_LENGTH") or 0)
                    faults = json.loads(environ["wsgi.input"].read(size) or b"[]")
                    FAULTS[:] = [dict(f, hits=0) for f in faults]
                elif method == "DELETE":
                    FAULTS.clear()
                body = json.dumps(FAULTS).encode()
                start_response(
                    "200 OK",
                    [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                )
                return [body]
            fault = _fault_for(environ)
            if fault is not None:
                return _error_response(fault, environ, start_response)
            return super().__call__(environ, start_response)

    moto.server.DomainDispatcherApplication = WithFaults


# The backend's operations; the batch APIs are built from get_item and put_item.
DYNAMODB_OPERATIONS = (
    "get_item", "put_item", "update_item", "delete_item", "query", "scan", "transact_write_items",
)


def patch_dynamodb_atomicity():
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    # Reentrant: a transaction's items go through put_item and friends.
    lock = threading.RLock()

    def serialized(operation):
        @functools.wraps(operation)
        def run(*args, **kwargs):
            with lock:
                return operation(*args, **kwargs)

        return run

    for name in DYNAMODB_OPERATIONS:
        setattr(DynamoDBBackend, name, serialized(getattr(DynamoDBBackend, name)))


def main():
    patch_dynamodb_atomicity()
    patch_task_states()
    patch_heartbeat_timeouts()
    patch_task_failure_cause()
    patch_events_to_states()
    patch_fault_injection()
    patch_lambda_invoke()
    patch_iam()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
