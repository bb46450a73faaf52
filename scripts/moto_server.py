#!/usr/bin/env python3
"""The local AWS emulator for ferry's tests: moto's server, with the two gaps of
moto 5.2.5 that keep a synthesized architecture from running filled in.

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
            arn = parse_arn(target["Arn"])
            event = dict(original_event)
            if "Input" in target:
                event = json.loads(target["Input"])
            get_backend(arn.account, arn.region).start_execution(
                target["Arn"], f"event-{uuid.uuid4()}", json.dumps(event)
            )

    models.Rule.send_to_targets = send_to_targets


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


def main():
    patch_task_states()
    patch_heartbeat_timeouts()
    patch_task_failure_cause()
    patch_events_to_states()
    patch_fault_injection()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
