#!/usr/bin/env python3
"""IAM as deployed, enforced by the local moto server.

  moto-iam.py server -H 127.0.0.1 -p PORT
      moto's server, enforcing IAM once INITIAL_NO_AUTH_ACTION_COUNT requests
      have been served, and matching DynamoDB calls against table ARNs (see
      below).
  moto-iam.py bootstrap OUT.json
      on a fresh enforcing server: an admin user (the server's first three
      requests), then one user per function of template.yaml with exactly its
      policy. Writes their keys and the policy's template lines to OUT.json.
  moto-iam.py users TEMPLATE SUFFIX
      (admin credentials in the environment) users for another template, e.g.
      a copy with one action removed; prints the same JSON.

What moto 5.2.1 honours by itself: action-level checks for every service;
resource ARNs only where a handler names the resource (SQS, IAM, STS). Its
DynamoDB handler passes "*", so a statement naming a table ARN never matches.
The server below therefore names the DynamoDB resource as AWS does: the table
ARN, `<table>/index/<name>` for a Query or Scan on an index, and for
BatchGetItem, BatchWriteItem, TransactGetItems and TransactWriteItems one check
per table and item action (a transaction's Put needs dynamodb:PutItem on its
table, as on AWS). SQS batch calls are checked as their single action, as AWS
does. Other services' statements get Resource "*" in moto (EventBridge and
SSM are checked against "*"; SQS against the queue ARN, but the policy keeps
"*" there too).

Two costs of moto's DynamoDB are bounded here, its behaviour otherwise kept:
objects it tracks forever (`untrack_dynamodb_models`) and a deep copy of
whole tables per transaction (`cheap_transaction_backups`). A 2,000-change
poll (`ce-load poll-budget`): 2,039 MB and 112 s with neither; 113 MB and
129 s untracked; 13 s with both. 20,000 changes: past 18 GB before, 203 MB
peak and 3 minutes now. The server also applies scripts/moto_fast.py (faster
ways to the same answers; MOTO_FAST=0 turns them off).
"""
import json
import os
import sys

import yaml

REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"  # moto's default account
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")


# ---------------------------------------------------------------- the server

def dynamodb_checks(action, body, account, region):
    """(IAM action, resource ARN) pairs AWS authorizes for one DynamoDB call."""
    arn = lambda t: f"arn:aws:dynamodb:{region}:{account}:table/{t}"
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, arn(t)) for t in body.get("RequestItems", {})]
    if action in ("TransactWriteItems", "TransactGetItems"):
        verbs = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        return [(verbs[kind], arn(op["TableName"]))
                for item in body.get("TransactItems", []) for kind, op in item.items()]
    table = body.get("TableName")
    if not table:
        return [(action, "*")]  # ListTables and the like
    if action in ("Query", "Scan") and body.get("IndexName"):
        return [(action, f"{arn(table)}/index/{body['IndexName']}")]
    return [(action, arn(table))]


class Untracked(list):
    """An `instances_tracked` list that keeps nothing."""

    def append(self, _instance):
        pass


def untrack_dynamodb_models():
    """Lets moto free DynamoDB objects nothing uses any more.

    moto 5.2.1 keeps every model object it ever makes: `BaseModel.__new__`
    (moto/core/common_models.py) appends each instance to its class's
    `instances_tracked` list, which only the /moto-api/data.json dashboard
    and S3's reset read. Its `transact_write_items`
    (moto/dynamodb/models/__init__.py) deep-copies every table a transaction
    touches, for a rollback, and `copy.deepcopy` builds the copies through
    `__new__`: each transaction's whole copy of the table (every Item, every
    StreamRecord) stays reachable for the life of the server. Memory then
    grows with transactions x table size: a 2,000-change poll (202
    transactions on tables of ~2,200 items) left 1.96 million Items and
    19,899 StreamRecords tracked, 2 GB, for ~2,200 items and 198 stream
    records alive. Without the trackers the tables are the only owners, and a
    transaction's copy is freed when it ends. S3's trackers stay (its reset
    closes files through them).
    """
    import moto.dynamodb.models  # noqa: F401 (defines the classes)
    from moto.core.common_models import BaseModel

    classes, seen = [BaseModel], set()
    while classes:
        cls = classes.pop()
        if cls in seen:
            continue
        seen.add(cls)
        classes.extend(cls.__subclasses__())
        if cls.__module__.startswith("moto.dynamodb.") and "instances_tracked" in vars(cls):
            cls.instances_tracked = Untracked()


def cheap_transaction_backups():
    """A transaction's rollback copy in time proportional to the table's keys.

    moto 5.2.1's `transact_write_items` (moto/dynamodb/models/__init__.py)
    backs up each table it touches with `copy.deepcopy(table)` before
    writing, and puts the copy back if any item of the transaction fails.
    Every transaction then costs a deep copy of whole tables: a poll of
    20,000 changes writes 2,000 notifications in transactions, and the
    poll-state table it copies holds up to 20,000 markers, so the run is
    quadratic (hours). The copy here is the same rollback state, cheaper:
    the table object and its key dicts are copied (new dicts over the same
    Item objects), and so is the stream shard's record list. A Put or a
    Delete replaces or removes a dict entry, which the copy does not see;
    only an Update changes its Item in place (`update_item`, same file), so
    the Items a transaction's Updates name are deep-copied as before. What a
    rolled-back transaction leaves is therefore what moto's own copy left.
    Other callers of `copy.deepcopy` in that module are unchanged.
    """
    import copy as copies
    import threading
    from collections import defaultdict

    import moto.dynamodb.models as backend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    updates = threading.local()

    def backup(table):
        snap = copies.copy(table)
        snap.items = defaultdict(dict)
        for h, rows in table.items.items():
            snap.items[h] = dict(rows) if isinstance(rows, dict) else rows
        if table.stream_shard is not None:
            shard = copies.copy(table.stream_shard)
            shard.items = list(table.stream_shard.items)
            shard.table = snap
            snap.stream_shard = shard
        for key in updates.keys.get(table.name, []):
            h = DynamoType(key[table.hash_key_attr])
            if table.range_key_attr is None:
                if h in snap.items:
                    snap.items[h] = copies.deepcopy(snap.items[h])
                continue
            r = DynamoType(key[table.range_key_attr])
            rows = snap.items.get(h)
            if rows is not None and r in rows:
                rows[r] = copies.deepcopy(rows[r])
        return snap

    class Copy:
        """`copy` as the backend module sees it: tables backed up as above."""

        @staticmethod
        def deepcopy(x, memo=None):
            if isinstance(x, Table) and getattr(updates, "keys", None) is not None:
                return backup(x)
            return copies.deepcopy(x, memo)

        copy = staticmethod(copies.copy)

    backend.copy = Copy
    transact = backend.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        keys = defaultdict(list)
        for item in transact_items:
            for kind, op in item.items():
                if kind == "Update" and "TableName" in op and "Key" in op:
                    keys[op["TableName"]].append(op["Key"])
        updates.keys = keys
        try:
            return transact(self, transact_items)
        finally:
            updates.keys = None

    backend.DynamoDBBackend.transact_write_items = transact_write_items


def cheap_request_routing():
    """Routes each request to its service without walking moto's package.

    moto 5.2.1's server finds the service of every request under one global
    lock (`DomainDispatcherApplication.get_application`,
    moto/moto_server/werkzeug_app.py), and on the way calls
    `backends.list_of_moto_modules()` (moto/backends.py), which lists moto's
    ~150 package directories with `os.listdir` and `os.path.isdir` each time.
    Profiled with py-spy during `ce-load webhooks`, that routing was about a
    tenth of the server's CPU. The directories do not change while the
    server runs, so the list is read once.
    """
    from moto import backends

    listed = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: listed


def quiet_request_log():
    """No access-log line per request: werkzeug writes one to stderr for
    every call (through colorama's wrapper), which showed in the same profile.
    Warnings and errors are still logged."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(argv):
    from moto.core import authorization
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMRequest
    import moto.server

    class Denied(JsonRESTError):
        code = 400

        def __init__(self, user_arn, action, resource):
            super().__init__("AccessDeniedException",
                             f"User: {user_arn} is not authorized to perform: {action} on resource: {resource}")

    def authorize(self, resource="*"):
        checks = dynamodb_checks(self._get_action(), getattr(self, "body", {}) or {},
                                 self.current_account, self.region)
        for action, arn in checks:
            class Request(IAMRequest):
                def __init__(self, **kw):
                    kw["action"] = action
                    super().__init__(**kw)

                def _raise_access_denied(self):
                    raise Denied(self._access_key.arn, self._action, arn)

            authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action(self, Request, arn)

    DynamoHandler._authenticate_and_authorize_normal_action = authorize
    untrack_dynamodb_models()
    cheap_transaction_backups()
    cheap_request_routing()
    quiet_request_log()
    import moto_fast  # beside this file
    moto_fast.install()

    # SQS authorizes a batch call as its single action (no sqs:*Batch in IAM);
    # moto asks for sqs:DeleteMessageBatch. Its resource (the queue ARN) is moto's.
    from moto.sqs.responses import SQSResponse
    single = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
    sqs_authorize = SQSResponse._authenticate_and_authorize_normal_action

    def authorize_sqs(self, resource="*"):
        action = single.get(self._get_action())
        if action is None:
            return sqs_authorize(self, resource)

        class Request(IAMRequest):
            def __init__(self, **kw):
                kw["action"] = action
                super().__init__(**kw)

        authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action(self, Request, resource)

    SQSResponse._authenticate_and_authorize_normal_action = authorize_sqs
    moto.server.main(argv)


# ------------------------------------------------- policies from the template

class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def load(path):
    """The template as Python values (intrinsics as Tagged), and its node tree (lines)."""
    text = open(path).read()
    node = yaml.compose(text, Loader=yaml.SafeLoader)

    def plain(n):
        if isinstance(n, yaml.MappingNode):
            v = {plain(k): plain(val) for k, val in n.value}
        elif isinstance(n, yaml.SequenceNode):
            v = [plain(x) for x in n.value]
        else:
            v = n.value
        return Tagged(n.tag[1:], v) if n.tag.startswith("!") else v

    return plain(node), node


def child(node, key):
    for k, v in node.value:
        if k.value == key:
            return k, v
    return None, None


def dynamodb_resource(r):
    """A table resource of a statement as (table logical id, suffix), or None."""
    if isinstance(r, Tagged) and r.tag == "GetAtt":
        target = r.value if isinstance(r.value, str) else ".".join(r.value)
        table, _, attr = target.partition(".")
        return (table, {"Arn": "", "StreamArn": "/stream/*"}.get(attr))
    if isinstance(r, Tagged) and r.tag == "Sub":
        s = r.value if isinstance(r.value, str) else r.value[0]
        if s.startswith("${") and ".Arn}" in s:
            table, rest = s[2:].split(".Arn}", 1)
            return (table, rest)
    return None


def function_policies(path):
    """{function: {"policies_line", "statements": [...], "policy": IAM JSON for moto}}."""
    doc, root = load(path)
    _, resources_node = child(root, "Resources")
    tables = {k for k, v in doc["Resources"].items() if v.get("Type") == "AWS::DynamoDB::Table"}
    out = {}
    for name, res in doc["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        _, props_node = child(child(resources_node, name)[1], "Properties")
        pkey, pnode = child(props_node, "Policies")
        statements, moto_statements = [], []
        for i, policy in enumerate(res["Properties"].get("Policies", [])):
            if not (isinstance(policy, dict) and "Statement" in policy):
                sys.exit(f"error: {path}: {name} policy {policy!r} is a SAM policy template or managed "
                         "policy; add its expansion to scripts/moto-iam.py")
            stmt_nodes = child(pnode.value[i], "Statement")[1].value
            for stmt, snode in zip(policy["Statement"], stmt_nodes):
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                res_list = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
                akey, _ = child(snode, "Action")
                tables_here = [t for t in map(dynamodb_resource, res_list) if t and t[0] in tables]
                statements.append({"line": akey.start_mark.line + 1, "effect": stmt["Effect"],
                                   "actions": actions,
                                   "resources": [t + (s or "") for t, s in tables_here]})
                dyn = [a for a in actions if a.startswith("dynamodb:")]
                other = [a for a in actions if not a.startswith("dynamodb:")]
                if dyn:
                    arns = [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/*{t}{s or ''}"
                            for t, s in tables_here]
                    if len(arns) != len(res_list) and stmt["Effect"] == "Allow":
                        arns = ["*"]  # a resource this script cannot resolve: action-level only
                    moto_statements.append({"Effect": stmt["Effect"], "Action": dyn, "Resource": arns})
                if other:
                    moto_statements.append({"Effect": stmt["Effect"], "Action": other, "Resource": "*"})
        out[name] = {"policies_line": (pkey.start_mark.line + 1) if pkey else None,
                     "statements": statements,
                     "policy": {"Version": "2012-10-17", "Statement": moto_statements}}
    return out


def create_user(iam, name, policy):
    iam.create_user(UserName=name)
    if policy["Statement"]:  # a function without Policies gets a user allowed nothing
        iam.put_user_policy(UserName=name, PolicyName="template", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"user": name, "access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def iam_client(key=None, secret=None):
    import boto3
    return boto3.client("iam", endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id=key or os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                        aws_secret_access_key=secret or os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))


def users(iam, template, suffix):
    # Shown in messages: relative to the project when it is the project's.
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    path = os.path.abspath(template)
    out = {"template": os.path.relpath(path, root) if path.startswith(root + os.sep) else path,
           "functions": {}}
    for fn, info in function_policies(template).items():
        out["functions"][fn] = {**create_user(iam, f"{fn}{suffix}", info["policy"]), **info}
    return out


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "server":
        serve(args)
    elif cmd == "bootstrap":
        # The server's first three requests need no credentials (with-moto.sh
        # starts it with INITIAL_NO_AUTH_ACTION_COUNT=3): they make the admin.
        anon = iam_client()
        admin = create_user(anon, "admin", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        out = users(iam_client(admin["access_key_id"], admin["secret_access_key"]),
                    os.path.join(os.path.dirname(__file__), "..", "template.yaml"), "")
        out["admin"] = admin
        with open(args[0], "w") as f:
            json.dump(out, f, indent=1)
    elif cmd == "users":
        print(json.dumps(users(iam_client(), args[0], args[1])))
    elif cmd == "policies":  # for reading: what each function's user gets
        print(json.dumps(function_policies(args[0] if args else "template.yaml"), indent=1))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
