"""RAG on the gateway: OpenAI's Files + Vector Stores API on PostgreSQL + pgvector, and
retrieval pipelines served as models (docs/rag.md)."""

# What serve_app/rag imports beyond the Ray LLM image (rayproject/ray-llm ships none of these):
# installed into the Ray workers through the application's runtime_env when rag is enabled
# (serve_app/serve_config.py). The same pins as requirements-dev.txt (a unit test checks).
PIP_REQUIREMENTS = (
    "psycopg[binary]==3.3.9",
    "psycopg-pool==3.3.3",
    "pypdf==7.1.0",
    "semantic-text-splitter==0.33.1",
)
