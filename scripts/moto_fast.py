"""Fast paths through moto 5.2.1's DynamoDB, for the local stack and the tests.

Each patch below is a faster way to give the answer moto gives: it cites the
moto function it replaces and says why the result is the same. They were
found by profiling moto's server (py-spy, and cProfile in process) under
`ce-load dispatch` and `ce-load webhooks`; docs/benchmarks.md has the
figures. scripts/moto-fast-check.py, run by `make test`, sends one corpus of
calls to moto with and without them and requires equal answers.

- `plain_json_item_operations`: request parameters and answers of item
  operations as plain JSON instead of moto's botocore-shape parser and
  serializer (about a fifth of the server's time before).
- `plain_json_stream_records`: the same for DynamoDB Streams' GetRecords (a
  quarter of the server's time under `ce-load webhooks`).
- `list_handler_methods_once`: the handler's method names, listed with
  `inspect` on every request before.
- `parse_update_expressions_once`: update expressions parsed once per text,
  the validator's copy made from a pickle, and its ten tree walks without
  per-node map building, slow isinstance checks, or quadratic checks (most
  of an UpdateItem's cost before).
- `parse_conditions_once_per_request`: a condition parsed once, not twice.
- `sort_by_cast_values_once` and `project_named_attributes_alone`: a Query
  on an index (the sweep's `by-due`) sorts and projects without rebuilding
  each value per comparison or the whole item per projected name.

`MOTO_FAST=0` turns them all off. `MOTO_FAST_VERIFY=1` also runs moto's own
parser and serializer beside the plain-JSON path and answers 500 on any
difference, so that a whole test run can check it.
"""
import datetime
import json
import os
import re
import sys

# Item operations: plain JSON both ways (`plain_json_item_operations`).
FAST_ACTIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
})

# A JSON key "B" or "BS" (a binary attribute). Inside a JSON string a quote is
# escaped (\"), so this matches keys only; a value "B" is never followed by a colon.
BINARY_KEY = re.compile(rb'"BS?"\s*:')


class FastPathMismatch(Exception):
    pass


def without_none(value):
    """What the shape serializer writes of a result: None members dropped."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def plain_answer(handler, action_result, body, shaped_serialized, verify):
    """The 200 answer with a plain-JSON body, checked against moto's own
    serializer when verifying."""
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    headers.update(handler.response_headers)
    if verify:
        status, shaped_headers, shaped_body = shaped_serialized(handler, action_result)
        if (status, shaped_headers, json.loads(shaped_body)) != (200, headers, json.loads(body)):
            raise FastPathMismatch(f"{handler._get_action()} answer: {status} {shaped_headers} {shaped_body}"
                                   f" != 200 {headers} {body}")
    return 200, headers, body


# The version whose functions these patches replace (scripts/ensure-tools.sh
# installs it); on any other the server runs unpatched, and says so.
MOTO_VERSION = "5.2.1"


def install(verify=None):
    """Applies every patch; returns False when MOTO_FAST=0 turns them off or
    moto is not MOTO_VERSION."""
    if os.environ.get("MOTO_FAST", "1") == "0":
        return False
    import moto

    if moto.__version__ != MOTO_VERSION:
        print(f"moto_fast: moto {moto.__version__} is not {MOTO_VERSION}, the version these patches "
              "were written for: the server runs without them", file=sys.stderr)
        return False
    if verify is None:
        verify = os.environ.get("MOTO_FAST_VERIFY") == "1"
    plain_json_item_operations(verify)
    plain_json_stream_records(verify)
    list_handler_methods_once()
    parse_update_expressions_once()
    parse_conditions_once_per_request()
    sort_by_cast_values_once()
    project_named_attributes_alone()
    return True


def plain_json_item_operations(verify):
    """Item operations' requests and answers as plain JSON.

    moto turns every DynamoDB request body into parameters with a
    botocore-shape parser (`BaseResponse.parse_parameters`,
    moto/core/responses.py) and every answer into JSON with a botocore-shape
    serializer (`BaseResponse.serialized`, same file; `BaseJSONSerializer`,
    moto/core/serialize.py). Both walk the operation's shape member by
    member, and for an item that is every attribute of every value: a claim's
    `ReturnValues=ALL_NEW` item was most of its serializing.

    DynamoDB speaks the AWS JSON 1.0 protocol, in which an item operation's
    request and answer are plain JSON: the shapes add nothing but blobs
    (base64 on the wire, bytes in moto) and timestamps, and item operations
    carry no timestamps. So for FAST_ACTIONS:
    - a request body with no binary attribute (`"B"` or `"BS"` as a key) is
      read with `json.loads`, which is what the shape parser yields for it;
    - an answer is written with `json.dumps`, keeping only the operation's
      output members and dropping members that are None, as the shape
      serializer does; a value `json` cannot write (bytes) falls back to
      moto's serializer.
    Errors, other operations and other services keep moto's paths.
    """
    from moto.core.responses import ActionResult, BaseResponse
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    shaped_parse = BaseResponse.parse_parameters
    shaped_serialized = BaseResponse.serialized

    def parse_parameters(self, request):
        action = self._get_action()
        body = getattr(request, "data", None)
        if (action in FAST_ACTIONS and isinstance(body, bytes)
                and request.headers.get("Content-Encoding", "") != "gzip"
                and not BINARY_KEY.search(body)):
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                params = None
            if isinstance(params, dict):
                if verify:
                    shaped_parse(self, request)
                    if self.params != params:
                        raise FastPathMismatch(f"{action} request: {self.params!r} != {params!r}")
                self.params = params
                return
        shaped_parse(self, request)

    def serialized(self, action_result):
        action = self._get_action()
        result = action_result.result
        if (action in FAST_ACTIONS and type(action_result) in (ActionResult, DynamoResult)
                and isinstance(result, dict)):
            members = output_members(action)
            try:
                body = json.dumps({k: without_none(v) for k, v in result.items()
                                   if k in members and v is not None},
                                  separators=(",", ":"))
            except (TypeError, ValueError):
                body = None  # bytes (a binary attribute): moto's serializer
            if body is not None:
                return plain_answer(self, action_result, body, shaped_serialized, verify)
        return shaped_serialized(self, action_result)

    members_of = {}

    def output_members(action):
        """The answer's top-level members: moto's dicts carry more (DeleteItem's
        legacy `ConsumedCapacityUnits`), which its serializer leaves out."""
        members = members_of.get(action)
        if members is None:
            shape = get_service_model("dynamodb").operation_model(action).output_shape
            members = members_of[action] = frozenset(shape.members)
        return members

    DynamoHandler.parse_parameters = parse_parameters
    DynamoHandler.serialized = serialized


def plain_json_stream_records(verify):
    """GetRecords answers as plain JSON (DynamoDB Streams, AWS JSON 1.0).

    Every change of a table with a stream is a record holding the whole new
    item, and the local stream reader fetches them all (on AWS the event
    source's filter drops most before Lambda; here our reader does):
    serializing them through moto's shape serializer (`BaseResponse.
    serialized`, moto/core/responses.py) was a quarter of the server's time
    under `ce-load webhooks`. The records are `StreamRecord.record` dicts
    (moto/dynamodb/models/table.py), whose keys are the shape's members and
    whose one non-JSON value, `ApproximateCreationDateTime` (a datetime), is
    written here with moto's own timestamp conversion (`TimestampSerializer`,
    moto/core/serialize.py, in the JSON protocols' default `unixtimestamp`)."""
    from moto.core.responses import ActionResult, BaseResponse
    from moto.core.serialize import TimestampSerializer
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    shaped_serialized = BaseResponse.serialized
    timestamps = TimestampSerializer(TimestampSerializer.TIMESTAMP_FORMAT_UNIX)

    def timestamp(value):
        if isinstance(value, datetime.datetime):
            return timestamps._convert_timestamp_to_str(value, TimestampSerializer.TIMESTAMP_FORMAT_UNIX)
        raise TypeError(f"not JSON: {type(value).__name__}")

    def serialized(self, action_result):
        result = action_result.result
        if (self._get_action() == "GetRecords" and type(action_result) is ActionResult
                and isinstance(result, dict) and set(result) <= {"Records", "NextShardIterator"}):
            try:
                body = json.dumps({k: v for k, v in result.items() if v is not None},
                                  separators=(",", ":"), default=timestamp)
            except (TypeError, ValueError):
                body = None  # bytes (a binary attribute): moto's serializer
            if body is not None:
                return plain_answer(self, action_result, body, shaped_serialized, verify)
        return shaped_serialized(self, action_result)

    DynamoDBStreamsHandler.serialized = serialized


def list_handler_methods_once():
    """`BaseResponse.call_action` lists the handler's methods with
    `inspect.getmembers` on every request (moto/core/utils.py,
    `method_names_from_class`); a class's methods do not change while the
    server runs, so each class is listed once."""
    from moto.core import responses as core_responses
    from moto.core import utils as core_utils

    listed = {}
    names_of = core_utils.method_names_from_class

    def method_names_from_class(clazz):
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = names_of(clazz)
        return names

    core_utils.method_names_from_class = method_names_from_class
    core_responses.method_names_from_class = method_names_from_class


def project_named_attributes_alone():
    """`Item.project` (moto/dynamodb/models/dynamo_type.py) converts the whole
    item to plain JSON (`to_regular_json`) once per projected path, then keeps
    that path. A Query on an index projects every result onto the index's
    keys this way (`SecondaryIndex.project`, moto/dynamodb/models/table.py):
    for the sweep's `by-due` (KEYS_ONLY, three names) that was three whole
    conversions per item. A path that is one plain name (no nesting, no
    `[n]`) is converted alone here, and merged exactly as moto merges it
    (`merge_dicts`, whose quirks stay); any other projection is moto's."""
    from botocore.utils import merge_dicts
    from moto.dynamodb.models import dynamo_type

    Item = dynamo_type.Item
    moto_project = Item.project
    list_index = re.compile(r"(.+)\[(\d+)\]$")  # what find_nested_key reads as an index

    def project(self, projection_expressions):
        if not all(len(path) == 1 and not list_index.match(path[0]) for path in projection_expressions):
            return moto_project(self, projection_expressions)
        result = {}
        for (name,) in projection_expressions:
            attribute = self.attrs.get(name)
            if attribute is not None:
                merge_dicts(result, {name: dynamo_type.deserializer.deserialize(attribute.to_regular_json())})
        return Item(hash_key=self.hash_key, range_key=self.range_key,
                    attrs=dynamo_type.serializer.serialize(result)["M"])

    Item.project = project


class SortKey:
    """A DynamoType as its comparisons see it, its cast value computed once.

    `DynamoType.__eq__` compares `type` and `cast_value`, and `__lt__` and
    the others compare `cast_value` (moto/dynamodb/models/dynamo_type.py);
    `cast_value` is a property that builds its value again at every call (a
    Decimal for a number). Sorting n items by DynamoTypes therefore built
    about 2·n·log n of them: for the sweep's Query on `by-due`, which sorts
    every pending item of a shard, that sort was a quarter of the Query.
    The same comparisons on values computed once give the same order.
    """

    __slots__ = ("type", "cast")

    def __init__(self, value):
        self.type = value.type
        self.cast = value.cast_value

    def __eq__(self, other):
        return self.type == other.type and self.cast == other.cast

    def __ne__(self, other):
        return self.type != other.type or self.cast != other.cast

    def __lt__(self, other):
        return self.cast < other.cast

    def __le__(self, other):
        return self.cast <= other.cast

    def __gt__(self, other):
        return self.cast > other.cast

    def __ge__(self, other):
        return self.cast >= other.cast

    __hash__ = None


def sort_by_cast_values_once():
    """`Table.all_items` and `Table.sorted_items` (moto/dynamodb/models/
    table.py) with their own sort keys, as SortKeys (see there)."""
    from moto.dynamodb.models.table import Table

    def all_items(self):
        items = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return sorted(items, key=lambda x: (SortKey(x.hash_key), SortKey(x.range_key))
                      if x.range_key else SortKey(x.hash_key))

    def sorted_items(self, hash_key_attrs, range_key_attrs, items):
        attrs_to_sort_by = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda x: tuple([SortKey(x.attrs[key]) for key in attrs_to_sort_by]))
        return items

    Table.all_items = all_items
    Table.sorted_items = sorted_items


def parse_update_expressions_once(limit=1024):
    """Update expressions: most of what an UpdateItem cost once the
    serializer was out of the way (cProfile of `DynamoDBBackend.update_item`,
    moto/dynamodb/models/__init__.py).

    - `UpdateExpressionParser.make` (moto/dynamodb/parsing/expressions.py)
      runs twice per UpdateItem, in the handler and in the backend, on the
      same text. Its tree is only read there (`find_clauses`), and the
      validator works on a copy (`Validator.__init__`, moto/dynamodb/parsing/
      validators.py, deep-copies it), so each distinct text is parsed once
      (at most `limit` kept); a failed parse is not kept.
    - That copy is made from the parsed tree's pickle, which builds the same
      tree in about half the time of `copy.deepcopy`.
    - The validator's walks (`DepthFirstTraverser`, moto/dynamodb/parsing/
      ast_nodes.py) are below.
    """
    import copy
    import pickle
    import threading

    from moto.dynamodb.parsing import ast_nodes, validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    parsed, pickled, lock = {}, {}, threading.Lock()
    make = UpdateExpressionParser.make.__func__

    def cached_make(cls, expression_str):
        tree = parsed.get(expression_str)
        if tree is None:
            tree = make(cls, expression_str)  # raises on a bad expression: not kept
            with lock:
                if len(parsed) >= limit:
                    parsed.clear()
                    pickled.clear()
                pickled[id(tree)] = (tree, pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))
                parsed[expression_str] = tree
        return tree

    UpdateExpressionParser.make = classmethod(cached_make)

    def tree_copy(x, memo=None):
        entry = pickled.get(id(x))
        if entry is not None and entry[0] is x:
            return pickle.loads(entry[1])
        return copy.deepcopy(x, memo)

    validators.deepcopy = tree_copy

    traverser = ast_nodes.DepthFirstTraverser

    # Each walk asked its processor for a new `_processing_map()` dict once
    # per node, twice (`nodes_to_be_processed` and `process`, which only
    # moto's `traverse_node_recursively` called, replaced below); one walk's
    # map does not change, so it is built once per walk.
    def processing_map(self):
        cached = self.__dict__.get("_fast_processing_map")
        if cached is None:
            cached = self.__dict__["_fast_processing_map"] = self._processing_map()
        return cached

    # A walk's map has the same classes as keys every time (each
    # `_processing_map` returns a literal), so which key a node class
    # matches first is looked up once per walk class and node class.
    first_key = {}

    def processor_for(self, kind):
        """The processor moto's `process` picks for a node of class `kind` (the
        first key, in the map's order, that it is an instance of), or None."""
        walk_kind = (type(self), kind)
        try:
            key = first_key[walk_kind]
        except KeyError:
            key = first_key[walk_kind] = next(
                (k for k in processing_map(self) if issubclass(kind, k)), None)
        return None if key is None else processing_map(self)[key]

    # `traverse_node_recursively` as in ast_nodes.py, with its isinstance
    # checks (against ABCs, slow) answered once per node class: whether a
    # value is a Node, and whether this walk processes it, depend on its
    # class only (nothing registers virtual subclasses).
    is_node = {}

    def traverse_node_recursively(self, node, child_id=-1):
        kind = type(node)
        node_kind = is_node.get(kind)
        if node_kind is None:
            node_kind = is_node[kind] = issubclass(kind, ast_nodes.Node)
        if node_kind:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            processor = processor_for(self, kind)
            if processor is not None:
                node = processor(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    traverser.traverse_node_recursively = traverse_node_recursively

    # Two of the walks check every node whose class is an `UpdateExpression`
    # (most nodes of the tree) by collecting the clauses or actions under it
    # (`find_clauses`), which costs the square of the tree's size:
    # `ActionCountValidator.verify_action_counts` (at most one SET, REMOVE,
    # ADD and DELETE clause) and `OverlappingPathsValidator.
    # check_for_overlapping_paths` (no path twice). Under any node there are
    # fewer clauses and actions than under the root, so when the root passes,
    # every node does: the root is checked alone. When it does not, the whole
    # walk runs as before, and raises the same first error.
    from moto.dynamodb.parsing.ast_nodes import UpdateExpression

    def root_first(cls, check):
        walk = cls.traverse

        def traverse(self, node):
            if isinstance(node, UpdateExpression):
                try:
                    getattr(self, check)(node)
                    return node
                except Exception:
                    pass
            return walk(self, node)

        cls.traverse = traverse

    root_first(validators.ActionCountValidator, "verify_action_counts")
    root_first(validators.OverlappingPathsValidator, "check_for_overlapping_paths")


def parse_conditions_once_per_request(limit=256):
    """A conditional PutItem or UpdateItem has its ConditionExpression parsed
    twice, by the handler (`DynamoHandler.put_item`/`update_item`, moto/
    dynamodb/responses.py, for the names it uses) and by the backend
    (`Table.put_item`, `DynamoDBBackend.update_item`) to evaluate it, each
    through `ConditionExpressionParser.parse` (moto/dynamodb/comparisons.py).
    The second is answered from the first: parses are kept by their exact
    expression, names and values (at most `limit`), with the names and
    values the parse found. The tree a parse returns is only evaluated
    (no `expr` method of comparisons.py changes its node), so sharing it is
    safe; a failed parse, or values json cannot key (bytes), is not kept."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parse = ConditionExpressionParser.parse
    kept = {}

    def parse_once(self):
        try:
            key = (self.condition_expression,
                   json.dumps(self.expression_attribute_names, sort_keys=True),
                   json.dumps(self.expression_attribute_values, sort_keys=True))
        except (TypeError, ValueError):
            return parse(self)
        hit = kept.get(key)
        if hit is None:
            # Parsed from copies of the names and values, so that the kept
            # tree shares no list or map with a request that may change it.
            alone = ConditionExpressionParser(key[0], json.loads(key[1]), json.loads(key[2]))
            tree = parse(alone)
            if len(kept) >= limit:
                kept.clear()
            hit = kept[key] = (tree, tuple(alone.expr_attr_names_found), tuple(alone.expr_attr_values_found))
        tree, names, values = hit
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return tree

    ConditionExpressionParser.parse = parse_once
