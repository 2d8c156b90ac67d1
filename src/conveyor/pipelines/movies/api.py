"""The recommender's own routes (PipelineHooks.api_routes): a user's top movies as plain text,
at ``/api/v1/endpoints/{name}/recommend/{user_id}`` and, for the ``movies`` endpoint, at
``/recommend/{user_id}`` (the course simulators' contract)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response

from conveyor.api.plugins import error_responses, predict

router = APIRouter(tags=["serving"])
EndpointName = Annotated[
    str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Endpoint name")
]
UserId = Annotated[int, PathParam(ge=0, le=2**63 - 1, description="User id (request key)")]
ENDPOINT = "movies"


@router.get(
    "/api/v1/endpoints/{name}/recommend/{user_id}",
    response_class=PlainTextResponse,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def recommend(name: EndpointName, user_id: UserId, request: Request) -> Response:
    """A recommender endpoint's top movies for a user as plain text, comma-separated (the
    ``movies`` endpoint also answers at ``/recommend/{user_id}``: the course simulators'
    contract)."""
    body = orjson.dumps({"userId": user_id})
    status, answer = await predict(request, name, body, str(user_id))
    if status != 200:
        return Response(answer, status, media_type="application/json")
    output = orjson.loads(answer)["predictions"][0]
    movies = str(output.get("movieIds", "")) if isinstance(output, dict) else str(output)
    return PlainTextResponse(",".join(movies.split()))


@router.get("/recommend/{user_id}", response_class=PlainTextResponse, include_in_schema=False)
async def recommend_at_root(user_id: UserId, request: Request) -> Response:
    return await recommend(ENDPOINT, user_id, request)
