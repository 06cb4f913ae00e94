"""The llm-platform CrossGuard policy pack (its own policy project: PulumiPolicy.yaml).

Rules are plain functions (`policy/rules/*`), run by CrossGuard through `policy/adapter.py` and
over the offline render through `policy/offline.py`.
"""
