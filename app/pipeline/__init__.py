"""The pipeline as the rest of the service reads it: the stages' numbers and names, what each
has pending, the shape of its result. A leaf below `app.stages`, whose implementations agree
with it (tests/test_pipeline_catalog.py), so runs, credits and the API need no stage code."""
