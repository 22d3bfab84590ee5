"""GraphQL over HTTP: ``GET`` (GraphiQL, or a query in the query string) and ``POST``, each
operation checked against the API's limits before it runs and stopped after its time."""

from __future__ import annotations

import asyncio
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from persisty.errors import PersistyError, ValidationError
from persisty.serve._api import Api, JSONResponse, error_response, read_json
from persisty.serve._graphql import build_schema
from persisty.serve._graphql_executor import SharingExecutor
from persisty.serve._graphql_limits import check_operation
from persisty.serve._graphql_loading import DEFAULT_CHILDREN, DEFAULT_PAGE, Context
from persisty.serve._limits import BadRequest, decode_json, too_deep
from persisty.serve._static import GRAPHIQL, REACT, REACT_DOM, asset


def _graphiql_html() -> str:
    """GraphiQL; its assets (React, ReactDOM, GraphiQL) are the package's own (``_static/``)."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>GraphiQL</title>
<link rel="stylesheet" href="{asset(GRAPHIQL + "/graphiql.min.css")}">
</head><body style="margin:0"><div id="graphiql" style="height:100vh"></div>
<script src="{asset(REACT + "/react.production.min.js")}"></script>
<script src="{asset(REACT_DOM + "/react-dom.production.min.js")}"></script>
<script src="{asset(GRAPHIQL + "/graphiql.min.js")}"></script>
<script>
const fetcher = GraphiQL.createFetcher({{url: window.location.pathname}});
ReactDOM.createRoot(document.getElementById("graphiql"))
  .render(React.createElement(GraphiQL, {{fetcher}}));
</script></body></html>"""


_GRAPHIQL = _graphiql_html()


async def _awaited(value: Any) -> ExecutionResult:
    if isinstance(value, ExecutionResult):
        return value
    result: ExecutionResult = await value
    return result


def graphql_route(api: Api, path: str = "/graphql") -> Route:
    """``GET`` (GraphiQL for browsers, or ``?query=`` for queries) and ``POST`` of GraphQL.

    Every operation is checked against ``api.limits`` before it runs (document size, root
    fields, depth, cost, nesting of variables) and stopped after ``graphql_timeout``."""
    schema = build_schema(api)
    limits = api.limits

    def refused(errors: list[GraphQLError], status: int = 400) -> Response:
        return JSONResponse(
            {"data": None, "errors": [e.formatted for e in errors]}, status_code=status
        )

    async def endpoint(request: Request) -> Response:
        try:
            if request.method == "GET":
                if "query" not in request.query_params:
                    return HTMLResponse(_GRAPHIQL)
                body: Any = dict(request.query_params)
                if "variables" in body:
                    body["variables"] = decode_json(body["variables"], limits, "variables")
            else:
                body = await read_json(request, limits)
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                raise BadRequest('send {"query": ..., "variables": {...}}')
            variables = body.get("variables")
            if variables is not None and not isinstance(variables, dict):
                raise BadRequest("variables must be an object")
            if variables and too_deep(variables, limits.max_depth):
                raise ValidationError(
                    f"variables nest deeper than {limits.max_depth} levels", field="variables"
                )
            op_name = body.get("operationName")
            if op_name is not None and not isinstance(op_name, str):
                raise BadRequest("operationName must be a string")
            try:
                doc = parse(body["query"], max_tokens=limits.graphql_tokens)
            except GraphQLError as e:
                if "tokens" in e.message:  # the document is longer than graphql_tokens
                    e.extensions = {"code": "too_large"}
                return refused([e])
            except RecursionError:
                return refused(
                    [GraphQLError("the document nests too deeply", extensions={"code": "too_deep"})]
                )
            op = get_operation_ast(doc, op_name)
            if request.method == "GET" and op is not None and (op.operation != OperationType.QUERY):
                raise BadRequest("mutations need POST")
            if op is not None:  # before validation, which is quadratic in some shapes
                over = check_operation(
                    schema,
                    doc,
                    op,
                    variables,
                    limits,
                    default_limit=DEFAULT_PAGE,
                    max_limit=api.max_limit,
                    default_children=DEFAULT_CHILDREN,
                )
                if over:
                    return refused(over)
            try:
                invalid = validate(schema, doc)
            except RecursionError:
                invalid = [
                    GraphQLError("the document nests too deeply", extensions={"code": "too_deep"})
                ]
            if invalid:
                return refused(invalid)
            run = execute(
                schema,
                doc,
                context_value=Context(api, request),
                variable_values=variables,
                operation_name=op_name,
                executor_class=SharingExecutor,
            )
            try:
                result = await asyncio.wait_for(_awaited(run), limits.graphql_timeout)
            except TimeoutError:
                return refused(
                    [
                        GraphQLError(
                            f"the query ran longer than {limits.graphql_timeout:g} s "
                            "and was stopped",
                            extensions={"code": "timeout"},
                        )
                    ],
                    503,
                )
        except PersistyError as e:
            return error_response(e, anonymous=api.is_anonymous(request))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            errs = []
            for err in result.errors:
                formatted = err.formatted
                orig = err.original_error
                if isinstance(orig, PersistyError):
                    code = orig.code
                    if code == "forbidden" and api.is_anonymous(request):
                        code = "unauthorized"
                    formatted["extensions"] = {"code": code, "field": orig.field}
                elif orig is not None and not isinstance(orig, GraphQLError):
                    # a bug's message stays in the log; a value graphql-core refused (an
                    # enum value that does not exist, a string for an Int) is the caller's
                    formatted["message"] = "internal server error"
                    formatted["extensions"] = {"code": "internal_error"}
                errs.append(formatted)
            out["errors"] = errs
        status = 200 if result.data is not None or not result.errors else 400
        return JSONResponse(out, status_code=status)

    return Route(path, endpoint, methods=["GET", "POST"], include_in_schema=False)
