"""The seven stages, by number: an explicit registry, not import side effects."""

from __future__ import annotations

from app.stages.base import AIStage, LocalStage
from app.stages.clustering import ClusteringStage
from app.stages.content import ContentStage
from app.stages.ideas import IdeasStage
from app.stages.images import ImagesStage
from app.stages.prompts import PromptsStage
from app.stages.review import ReviewStage
from app.stages.tasks import TasksStage

STAGES: dict[int, AIStage | LocalStage] = {
    stage.number: stage
    for stage in (
        ClusteringStage(),
        IdeasStage(),
        TasksStage(),
        ContentStage(),
        PromptsStage(),
        ImagesStage(),
        ReviewStage(),
    )
}
