"""Fast paths through moto 5.2.1's DynamoDB handler, same bytes on the wire.

moto 5.2.1 turns every DynamoDB request body into parameters with a
botocore-shape parser (`BaseResponse.parse_parameters`, moto/core/responses.py)
and every answer into JSON with a botocore-shape serializer
(`BaseResponse.serialized` and `ActionResult.execute_result`, same file;
`BaseJSONSerializer`, moto/core/serialize.py). Both walk the operation's shape
member by member, and for an item that is every attribute of every value.
Profiled with py-spy during `ce-load webhooks` and `ce-load dispatch`, the
serializer alone was about a fifth of the server's time, and a claim's
`ReturnValues=ALL_NEW` item the most of it.

DynamoDB speaks the AWS JSON 1.0 protocol, in which an item operation's
request and answer are plain JSON: the shapes add nothing but blobs (base64
on the wire, bytes in moto) and timestamps, and item operations carry no
timestamps. So for the operations below:
- a request body with no binary attribute (`"B"` or `"BS"` as a key) is read
  with `json.loads`, which is what the shape parser yields for it;
- an answer is written with `json.dumps`, keeping only the operation's
  output members and dropping members that are None, as the shape serializer
  does; any value `json` cannot write (bytes) falls back to moto's own
  serializer.
Errors, every other operation and every other service keep moto's paths.

Update expressions, whose handling was most of what an UpdateItem cost once
the serializer was out of the way (cProfile of `update_item`, moto/dynamodb/
models/__init__.py):
- `UpdateExpressionParser.make` (moto/dynamodb/parsing/expressions.py) runs
  twice per UpdateItem, in the handler and in the backend, on the same text.
  Its tree is only read there (`find_clauses`), and the validator works on a
  copy (`Validator.__init__`, moto/dynamodb/parsing/validators.py, deep-copies
  it), so each distinct expression is parsed once; a failed parse is not kept.
- that copy is made from the parsed tree's pickle, which builds the same tree
  in about half the time of `copy.deepcopy`.
- each of the validator's ten tree walks asked its processor for a new
  `_processing_map()` dict once per node, twice (`DepthFirstTraverser.
  nodes_to_be_processed` and `process`, moto/dynamodb/parsing/ast_nodes.py);
  the map of one processor does not change, so it is built once per walk.

`MOTO_FAST_VERIFY=1` runs moto's own parser and serializer beside each fast
path and answers 500 on any difference (`self_test` does it on a corpus; the
whole test suite can run that way). `MOTO_FAST=0` turns the fast paths off.
"""
import json
import os
import re

# Item operations: plain JSON both ways (see above).
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


def install(verify=None):
    """Patches moto's DynamoHandler; returns False when turned off."""
    if os.environ.get("MOTO_FAST", "1") == "0":
        return False
    if verify is None:
        verify = os.environ.get("MOTO_FAST_VERIFY") == "1"

    from moto.core.responses import ActionResult, BaseResponse
    from moto.core import utils as core_utils
    from moto.core import responses as core_responses
    from moto.dynamodb.responses import DynamoHandler

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
        if (action in FAST_ACTIONS and type(action_result) in FAST_RESULTS
                and isinstance(result, dict)):
            members = output_members(action)
            try:
                body = json.dumps({k: without_none(v) for k, v in result.items()
                                   if k in members and v is not None},
                                  separators=(",", ":"))
            except (TypeError, ValueError):
                body = None  # bytes (a binary attribute): moto's serializer
            if body is not None:
                headers = {"Content-Type": "application/x-amz-json-1.0"}
                headers.update(self.response_headers)
                if verify:
                    status, shaped_headers, shaped_body = shaped_serialized(self, action_result)
                    if (status, shaped_headers, json.loads(shaped_body)) != (200, headers, json.loads(body)):
                        raise FastPathMismatch(
                            f"{action} answer: {status} {shaped_headers} {shaped_body} != 200 {headers} {body}")
                return 200, headers, body
        return shaped_serialized(self, action_result)

    from moto.dynamodb.responses import DynamoResult
    FAST_RESULTS = (ActionResult, DynamoResult)

    from moto.core.utils import get_service_model
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

    # `BaseResponse.call_action` lists the handler's methods with
    # `inspect.getmembers` on every request (moto/core/utils.py,
    # `method_names_from_class`); a class's methods do not change while the
    # server runs, so each class is listed once.
    listed = {}
    names_of = core_utils.method_names_from_class

    def method_names_from_class(clazz):
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = names_of(clazz)
        return names

    core_utils.method_names_from_class = method_names_from_class
    core_responses.method_names_from_class = method_names_from_class
    parse_update_expressions_once()
    sort_by_cast_values_once()
    return True


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
    """See the module's notes on update expressions."""
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

    def processing_map(self):
        cached = self.__dict__.get("_fast_processing_map")
        if cached is None:
            cached = self.__dict__["_fast_processing_map"] = self._processing_map()
        return cached

    def nodes_to_be_processed(self):
        kinds = self.__dict__.get("_fast_kinds")
        if kinds is None:
            kinds = self.__dict__["_fast_kinds"] = tuple(processing_map(self))
        return kinds

    def process(self, node):
        for class_key, processor in processing_map(self).items():
            if isinstance(node, class_key):
                return processor(node)

    traverser.nodes_to_be_processed = nodes_to_be_processed
    traverser.process = process
