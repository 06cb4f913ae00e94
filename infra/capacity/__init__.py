"""Capacity and cost: the instance catalog with its prices (catalog), architecture facts of
common models (model_catalog), the capacity check (fit) and GPU pool costs (cost).

Pure functions and data: no Pulumi resources. May import nothing else from `infra/` (the config
imports it to check a stack file), only serve_app.config.
"""
