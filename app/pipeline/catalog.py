"""The seven stages by number and name. The implementations (app.stages.registry) carry the
same number and name; a test keeps the two in step."""

from __future__ import annotations

STAGE_NUMBERS = range(1, 8)

STAGE_NAMES: dict[int, str] = {
    1: "Keywords → Clusters",
    2: "Clusters → Ideas",
    3: "Ideas → Tasks",
    4: "Tasks → Content",
    5: "Content → Image prompts",
    6: "Image prompts → Images",
    7: "Review → Published",
}
