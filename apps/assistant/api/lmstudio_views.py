"""Local model servers for admins and owners: LM Studio's models (load, unload) and Ollama's (list, pull)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsAdmin
from apps.accounts.selectors import request_workspace
from apps.assistant import local_models, selectors
from apps.assistant.api import provider_serializers as s
from chatbot.openapi import errors

TAGS = ["lmstudio"]
UNAVAILABLE = errors(
    {
        400: "url_not_allowed: the server's URL leads to a private or internal network.",
        429: "local_model_busy: this workspace's calls to its model server are already under way.",
        503: "The model server is not reachable, too slow, or failed.",
    }
)
MODEL_ERRORS = {
    **UNAVAILABLE,
    **errors(
        {
            400: "Not valid, refused by the model server, or url_not_allowed.",
            404: "The model server knows no such model.",
            429: "local_model_busy, or local_model_jobs_busy: too many loads/downloads under way.",
        }
    ),
}


def _model(request: Request) -> str:
    data = s.ModelInput(data=request.data)
    data.is_valid(raise_exception=True)
    return str(data.validated_data["model"])


class LMStudioStatusView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        tags=TAGS, responses={200: s.LMStudioStatusOutput}, description="Unreachable is reported, not 503."
    )
    def get(self, request: Request) -> Response:
        status = local_models.lmstudio_status(workspace_id=request_workspace(request).pk)
        return Response(s.LMStudioStatusOutput(status).data)


class LMStudioLoadView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        tags=TAGS,
        request=s.ModelInput,
        responses={202: s.ModelPullOutput, **MODEL_ERRORS},
        description=(
            "Starts the load in a worker and answers at once (a large model takes minutes); "
            "follow it in GET /api/lmstudio/models/loads. Asking again while it runs changes nothing."
        ),
    )
    def post(self, request: Request) -> Response:
        job = local_models.lmstudio_load_start(
            workspace_id=request_workspace(request).pk, model=_model(request)
        )
        return Response(s.ModelPullOutput(job).data, status=202)


class LMStudioLoadsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(tags=TAGS, responses={200: s.ModelPullOutput(many=True)})
    def get(self, request: Request) -> Response:
        loads = selectors.model_pulls(workspace=request_workspace(request), kind="load")
        # The stubs type the instance of a many=True serializer as one row, not a list of them.
        return Response(s.ModelPullOutput(loads, many=True).data)  # type: ignore[arg-type]


class LMStudioUnloadView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(tags=TAGS, request=s.ModelInput, responses={200: s.LMStudioUnloadOutput, **MODEL_ERRORS})
    def post(self, request: Request) -> Response:
        unloaded = local_models.lmstudio_unload(
            workspace_id=request_workspace(request).pk, model=_model(request)
        )
        return Response(s.LMStudioUnloadOutput(unloaded).data)


class OllamaModelsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(tags=TAGS, responses={200: s.OllamaModelsOutput, **UNAVAILABLE})
    def get(self, request: Request) -> Response:
        base_url, models = local_models.ollama_models(workspace_id=request_workspace(request).pk)
        return Response(s.OllamaModelsOutput({"base_url": base_url, "models": models}).data)


class OllamaPullView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        tags=TAGS,
        request=s.ModelInput,
        responses={202: s.ModelPullOutput, **MODEL_ERRORS},
        description=(
            "Starts the download in a worker and answers at once (a large model takes minutes); "
            "follow it in GET /api/lmstudio/ollama/pulls. Asking again while it runs changes nothing."
        ),
    )
    def post(self, request: Request) -> Response:
        pull = local_models.ollama_pull_start(
            workspace_id=request_workspace(request).pk, model=_model(request)
        )
        return Response(s.ModelPullOutput(pull).data, status=202)


class OllamaPullsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(tags=TAGS, responses={200: s.ModelPullOutput(many=True)})
    def get(self, request: Request) -> Response:
        pulls = selectors.model_pulls(workspace=request_workspace(request))
        # The stubs type the instance of a many=True serializer as one row, not a list of them.
        return Response(s.ModelPullOutput(pulls, many=True).data)  # type: ignore[arg-type]
