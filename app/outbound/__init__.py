"""Requests to addresses users give us: the SSRF-guarded client (`client`) and the signing of
the deliveries it makes (`signing`)."""
