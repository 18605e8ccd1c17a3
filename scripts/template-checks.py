#!/usr/bin/env python3
"""Operational checks of template.yaml that cfn-lint does not make.

  template-checks.py [TEMPLATE]   # every check; exit 1 if one fails
  template-checks.py --self-test  # each check catches its fault in a broken copy

For every function:
  - invoked asynchronously (schedules, EventBridge rules, SNS, S3, or rules
    created at run time that a Lambda permission lets events.amazonaws.com
    use): a DeadLetterQueue or an EventInvokeConfig OnFailure destination;
    from a DynamoDB or Kinesis stream: an OnFailure destination on that event;
    from SQS: a RedrivePolicy on the queue;
  - an alarm on its Errors and one on its Throttles (AWS/Lambda, FunctionName
    dimension, alone or inside a metric-math alarm);
  - log retention: an AWS::Logs::LogGroup "/aws/lambda/${Fn}" with RetentionInDays;
  - no wildcard action on a data table in its policies.
For every table: point-in-time recovery and server-side encryption enabled.
For every Number parameter: a range (MinValue and MaxValue, or AllowedValues),
so a capacity knob cannot be set outside what docs/capacity.md calls safe.
Every function that writes NotificationsTable gets DUE_SHARDS and
DUE_SHARDS_PREVIOUS from the same parameters as the dispatcher, which sweeps
by them: a writer on another shard count would strand its notifications.
"""
import copy
import os
import sys

import yaml

ASYNC_EVENTS = {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3",
                "IoTRule", "CloudWatchLogs", "CognitoIdentityProvider"}
STREAM_EVENTS = {"DynamoDB", "Kinesis"}


class Tag:
    """An intrinsic function (!Ref, !GetAtt, !Sub...) kept as tag + value."""
    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __eq__(self, other):
        return isinstance(other, Tag) and (self.tag, self.value) == (other.tag, other.value)

    def __repr__(self):
        return f"!{self.tag} {self.value!r}"


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag(suffix, value)


Loader.add_multi_constructor("!", _tag)


def refs(value, name):
    """Whether an intrinsic value refers to resource `name` (Ref, GetAtt, Sub)."""
    if isinstance(value, Tag):
        v = value.value
        if value.tag == "Ref":
            return v == name
        if value.tag == "GetAtt":
            return (v if isinstance(v, str) else ".".join(v)).split(".")[0] == name
        if value.tag == "Sub":
            s = v if isinstance(v, str) else v[0]
            return "${" + name + "}" in s or "${" + name + "." in s
    if isinstance(value, dict) and len(value) == 1:
        (k, v), = value.items()
        if k in ("Ref", "Fn::GetAtt", "Fn::Sub"):
            return refs(Tag(k.replace("Fn::", ""), v), name)
    return False


def as_list(v):
    return v if isinstance(v, list) else [v]


def checks(doc):
    """Yields (passed, description) for every check."""
    res = doc.get("Resources", {})
    by_type = lambda t: {k: v for k, v in res.items() if v.get("Type") == t}
    functions = by_type("AWS::Serverless::Function")
    tables = by_type("AWS::DynamoDB::Table")
    alarms = by_type("AWS::CloudWatch::Alarm")
    log_groups = by_type("AWS::Logs::LogGroup")
    permissions = by_type("AWS::Lambda::Permission")
    globals_fn = doc.get("Globals", {}).get("Function", {})

    def alarmed(fn, metric):
        for alarm in alarms.values():
            p = alarm.get("Properties", {})
            stats = [p] + [m.get("MetricStat", {}).get("Metric", {}) for m in p.get("Metrics", [])]
            for s in stats:
                if s.get("Namespace") == "AWS/Lambda" and s.get("MetricName") == metric and any(
                        d.get("Name") == "FunctionName" and refs(d.get("Value"), fn)
                        for d in s.get("Dimensions", [])):
                    return True
        return False

    for fn, r in functions.items():
        p = r.get("Properties", {})
        events = p.get("Events", {}) or {}
        kinds = {e.get("Type") for e in events.values()}
        runtime_rules = any(refs(perm["Properties"].get("FunctionName"), fn)
                            and perm["Properties"].get("Principal") in ("events.amazonaws.com", "sns.amazonaws.com",
                                                                        "s3.amazonaws.com", "scheduler.amazonaws.com")
                            for perm in permissions.values())
        if kinds & ASYNC_EVENTS or runtime_rules:
            dlq = p.get("DeadLetterQueue") or globals_fn.get("DeadLetterQueue")
            dest = (p.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure"))
            why = ", ".join(sorted(kinds & ASYNC_EVENTS) + (["rules created at run time"] if runtime_rules else []))
            yield bool(dlq or dest), f"{fn}: invoked asynchronously ({why}) has a dead-letter queue or OnFailure destination"
        for name, e in events.items():
            if e.get("Type") in STREAM_EVENTS:
                on_failure = e.get("Properties", {}).get("DestinationConfig", {}).get("OnFailure")
                yield bool(on_failure), f"{fn}: stream event {name} has an OnFailure destination"
            if e.get("Type") == "SQS":
                queue = e.get("Properties", {}).get("Queue")
                q = next((v for k, v in res.items() if refs(queue, k)), {})
                yield "RedrivePolicy" in q.get("Properties", {}), f"{fn}: SQS event {name}'s queue has a RedrivePolicy"
        yield alarmed(fn, "Errors"), f"{fn}: an alarm on its Errors"
        yield alarmed(fn, "Throttles"), f"{fn}: an alarm on its Throttles"
        retained = any(refs(g["Properties"].get("LogGroupName"), fn)
                       and "/aws/lambda/" in str(g["Properties"]["LogGroupName"].value if isinstance(
                           g["Properties"].get("LogGroupName"), Tag) else g["Properties"].get("LogGroupName"))
                       and g["Properties"].get("RetentionInDays") for g in log_groups.values())
        yield retained, f"{fn}: a log group /aws/lambda/${{{fn}}} with RetentionInDays"
        wild = []
        for policy in as_list(p.get("Policies", [])):
            if not isinstance(policy, dict):
                continue
            for st in as_list(policy.get("Statement", [])):
                acts = [a for a in as_list(st.get("Action", [])) if "*" in a]
                on_table = [t for t in tables if any(refs(x, t) for x in as_list(st.get("Resource", [])))]
                if acts and st.get("Effect") == "Allow" and (on_table or "*" in as_list(st.get("Resource"))):
                    wild.append(f"{acts} on {on_table or '*'}")
        yield not wild, f"{fn}: no wildcard action on a data table" + (f" (found {'; '.join(wild)})" if wild else "")
    for name, param in doc.get("Parameters", {}).items():
        if param.get("Type") == "Number":
            ranged = "AllowedValues" in param or ("MinValue" in param and "MaxValue" in param)
            yield ranged, f"parameter {name}: a Number with a range (MinValue and MaxValue, or AllowedValues)"
    global_env = globals_fn.get("Environment", {}).get("Variables", {})

    def env_of(fn):
        return {**global_env, **(functions[fn].get("Properties", {}).get("Environment", {}) or {}).get(
            "Variables", {})}

    def writes_notifications(fn):
        for policy in as_list(functions[fn].get("Properties", {}).get("Policies", [])):
            for st in as_list(policy.get("Statement", []) if isinstance(policy, dict) else []):
                acts = set(as_list(st.get("Action", [])))
                if acts & {"dynamodb:PutItem", "dynamodb:UpdateItem"} and any(
                        refs(x, "NotificationsTable") and not str(getattr(x, "value", x)).count("/index/")
                        for x in as_list(st.get("Resource", []))):
                    return True
        return False

    sweeper = env_of("DispatcherFunction") if "DispatcherFunction" in functions else {}
    for fn in functions:
        if writes_notifications(fn):
            env = env_of(fn)
            same = all(var in env and env[var] == sweeper.get(var) for var in ("DUE_SHARDS", "DUE_SHARDS_PREVIOUS"))
            yield same, f"{fn}: writes NotificationsTable with the dispatcher's DUE_SHARDS and DUE_SHARDS_PREVIOUS"
    for t, r in tables.items():
        p = r.get("Properties", {})
        yield (p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True,
               f"{t}: point-in-time recovery enabled")
        yield p.get("SSESpecification", {}).get("SSEEnabled") is True, f"{t}: server-side encryption enabled"


def run(doc, quiet=False):
    passed = failed = 0
    failures = []
    for ok, what in checks(doc):
        if not quiet:
            print(f"{'ok  ' if ok else 'FAIL'} {what}")
        passed, failed = passed + ok, failed + (not ok)
        if not ok:
            failures.append(what)
    return passed, failed, failures


def self_test(doc):
    """Each check fails on a copy of the template with its fault put in."""
    def broken(edit):
        d = copy.deepcopy(doc)
        edit(d["Resources"])
        return run(d, quiet=True)[2]

    def broken_doc(edit):
        d = copy.deepcopy(doc)
        edit(d)
        return run(d, quiet=True)[2]

    def own_shard_count(d):
        env = d["Resources"]["WebhooksFunction"]["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        env["DUE_SHARDS"] = 8

    def drop_alarm(metric, fn):
        def edit(r):
            for k, v in list(r.items()):
                p = v.get("Properties", {})
                if v.get("Type") == "AWS::CloudWatch::Alarm" and (p.get("MetricName") == metric and any(
                        refs(d.get("Value"), fn) for d in p.get("Dimensions", []))):
                    del r[k]
                for m in p.get("Metrics", []) if v.get("Type") == "AWS::CloudWatch::Alarm" else []:
                    s = m.get("MetricStat", {}).get("Metric", {})
                    if s.get("MetricName") == metric and any(refs(d.get("Value"), fn) for d in s.get("Dimensions", [])):
                        s["Dimensions"] = []
        return edit

    def wildcard(r):
        r["WebhooksFunction"]["Properties"]["Policies"][0]["Statement"][0]["Action"] = ["dynamodb:*"]

    def no_log_group(r):
        for k in [k for k, v in r.items() if v.get("Type") == "AWS::Logs::LogGroup" and refs(
                v["Properties"].get("LogGroupName"), "DispatcherFunction")]:
            del r[k]

    cases = [
        ("poller without its DLQ", lambda r: r["PollerFunction"]["Properties"].pop("DeadLetterQueue"),
         "PollerFunction: invoked asynchronously"),
        ("dispatcher stream without OnFailure",
         lambda r: r["DispatcherFunction"]["Properties"]["Events"]["NewNotifications"]["Properties"].pop("DestinationConfig"),
         "DispatcherFunction: stream event NewNotifications"),
        ("no errors alarm for the webhooks function", drop_alarm("Errors", "WebhooksFunction"),
         "WebhooksFunction: an alarm on its Errors"),
        ("no throttles alarm for the poller", drop_alarm("Throttles", "PollerFunction"),
         "PollerFunction: an alarm on its Throttles"),
        ("no log group for the dispatcher", no_log_group, "DispatcherFunction: a log group"),
        ("dynamodb:* for the webhooks function", wildcard, "WebhooksFunction: no wildcard action"),
        ("no PITR on AccountsTable",
         lambda r: r["AccountsTable"]["Properties"].pop("PointInTimeRecoverySpecification"),
         "AccountsTable: point-in-time recovery"),
        ("no SSE on NotificationsTable",
         lambda r: r["NotificationsTable"]["Properties"].pop("SSESpecification"),
         "NotificationsTable: server-side encryption"),
    ]
    doc_cases = [
        ("an unbounded Number parameter", lambda d: d["Parameters"]["DueShards"].pop("MaxValue"),
         "parameter DueShards: a Number with a range"),
        ("a writer on its own shard count", own_shard_count,
         "WebhooksFunction: writes NotificationsTable with the dispatcher's DUE_SHARDS"),
    ]
    passed = failed = 0
    for what, edit, expected in doc_cases:
        caught = [f for f in broken_doc(edit) if f.startswith(expected)]
        print(f"{'ok  ' if caught else 'FAIL'} self-test: {what} is caught")
        passed, failed = passed + bool(caught), failed + (not caught)
    for what, edit, expected in cases:
        caught = [f for f in broken(edit) if f.startswith(expected)]
        print(f"{'ok  ' if caught else 'FAIL'} self-test: {what} is caught")
        passed, failed = passed + bool(caught), failed + (not caught)
    return passed, failed


def main():
    args = sys.argv[1:]
    default = os.path.join(os.path.dirname(__file__), "..", "template.yaml")
    if args and args[0] == "--self-test":
        doc = yaml.load(open(args[1] if len(args) > 1 else default), Loader=Loader)
        passed, failed = self_test(doc)
        print(f"template checks self-test: {passed} passed, {failed} failed")
    else:
        doc = yaml.load(open(args[0] if args else default), Loader=Loader)
        passed, failed, _ = run(doc)
        print(f"template checks: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
