"""The serving side of RAG: `serving.rag` (vector stores, database, pipelines served as models).

Pure (stdlib + pydantic): the Pulumi program imports it through `serve_app.config`. The stack
config's `rag` section (infra/, Aurora and the migration Job) wraps this model; cross-references
to `serving.models[]` are checked by `ServingConfig` (serve_app/config.py), which knows them.
The database password or DSN is never part of this model: it is read from an environment
variable in the pods (`database.dsnEnvVar`).
"""

from __future__ import annotations

import re
import string

from pydantic import Field, field_validator, model_validator

# serve_app.config imports this module after defining these (see the import there).
from serve_app.config import NAME_PATTERN, Name, StrictModel
from serve_app.config import _first_repeat as first_repeat
from serve_app.rag.schema import DSN_ENV_VAR

# OpenAI's vector store ids look like `vs_<random>`; a pipeline may name stores by id.
VECTOR_STORE_ID_PATTERN = r"^vs_[A-Za-z0-9]{1,64}$"
DEFAULT_PROMPT = (
    "Answer the question using only the context below. If the context does not contain the"
    " answer, say so.\n\nContext:\n{context}\n\nQuestion: {question}"
)
_ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Chunking(StrictModel):
    """How files are split before embedding: OpenAI's `static` strategy and its defaults."""

    max_chunk_size_tokens: int = Field(
        800, ge=100, le=4096,
        description="Most tokens (of the embedder's tokenizer) in one chunk; OpenAI's default"
        " and bounds. Must fit the embedder's max_model_len.",
    )
    chunk_overlap_tokens: int = Field(
        400, ge=0,
        description="Tokens shared by neighbouring chunks; at most half of maxChunkSizeTokens"
        " (OpenAI's rule).",
    )

    @model_validator(mode="after")
    def _overlap(self) -> Chunking:
        if self.chunk_overlap_tokens * 2 > self.max_chunk_size_tokens:
            raise ValueError(
                f"chunkOverlapTokens ({self.chunk_overlap_tokens}) must be at most half of"
                f" maxChunkSizeTokens ({self.max_chunk_size_tokens})"
            )
        return self


class RagLimits(StrictModel):
    max_file_bytes: int = Field(
        10 * 2**20, ge=1, le=512 * 2**20,
        description="Largest file /v1/files accepts (bytes); larger uploads get 413.",
    )
    max_store_bytes: int = Field(
        256 * 2**20, ge=1, le=2**40,
        description="Most bytes of files one vector store may hold; an attach past it gets 400.",
    )
    max_chunks_per_file: int = Field(
        20_000, ge=1, le=1_000_000,
        description="Most chunks one file may produce; a file that splits into more gets 400.",
    )


class RagDatabase(StrictModel):
    """The PostgreSQL (pgvector) database: Aurora on AWS, tools/local_pg.py locally."""

    dsn_env_var: str = Field(
        DSN_ENV_VAR,
        description="Environment variable holding the libpq DSN (URI or key=value), password"
        " included; set from a Secret, never in config.",
    )
    pool_min_size: int = Field(
        1, ge=0, le=100, description="Connections each ingress replica keeps open."
    )
    pool_max_size: int = Field(
        8, ge=1, le=200, description="Most connections per ingress replica."
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=120,
        description="Seconds to wait for a connection before the request fails with 503.",
    )
    statement_timeout_ms: int = Field(
        15_000, ge=100, le=600_000, description="PostgreSQL statement_timeout of every session."
    )
    migrate_on_start: bool = Field(
        True,
        description="The gateway runs the idempotent schema migration (serve_app/rag/schema.py)"
        " when it starts; off when a migration Job owns it (the platform sets it false on"
        " EKS).",
    )
    hnsw_ef_search: int = Field(
        100, ge=1, le=1000,
        description="pgvector hnsw.ef_search per search (recall vs latency; pgvector's default"
        " is 40). At least the largest topK.",
    )

    @field_validator("dsn_env_var")
    @classmethod
    def _env_var(cls, value: str) -> str:
        if not _ENV_VAR_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid environment variable name")
        return value

    @model_validator(mode="after")
    def _pool(self) -> RagDatabase:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"poolMinSize ({self.pool_min_size}) must be <= poolMaxSize ({self.pool_max_size})"
            )
        return self


class Pipeline(StrictModel):
    """A retrieval pipeline served as a model: embed the question, search, (rerank), generate."""

    name: Name = Field(description="The name clients put in `model` (listed in /v1/models).")
    embedder: Name = Field(
        description="A served model with task embed; must be the one that embedded the stores."
    )
    generator: Name = Field(description="A served generate model or an alias of such models.")
    reranker: Name | None = Field(
        None, description="Optional served model with task score that reorders the candidates."
    )
    vector_store_ids: list[str] | None = Field(
        None, max_length=32,
        description="Stores searched (ids `vs_...`); unset: every store of the calling key.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Chunks put into the prompt.")
    rerank_candidates: int = Field(
        20, ge=1, le=200,
        description="Chunks fetched for the reranker to reorder (>= topK; reranker only).",
    )
    prompt_template: str = Field(
        DEFAULT_PROMPT, min_length=1, max_length=20_000,
        description="The user message sent to the generator: Python format string with"
        " {context} and {question}.",
    )

    @field_validator("vector_store_ids")
    @classmethod
    def _store_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        for i, store in enumerate(value):
            if not re.fullmatch(VECTOR_STORE_ID_PATTERN, store):
                raise ValueError(f"vectorStoreIds[{i}] {store!r} is not a vector store id (vs_...)")
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise ValueError(f"promptTemplate is not a valid format string: {exc}") from exc
        missing = {"context", "question"} - fields
        extra = fields - {"context", "question"}
        if missing or extra:
            raise ValueError(
                "promptTemplate must use exactly {context} and {question}"
                + (f"; missing {sorted(missing)}" if missing else "")
                + (f"; unknown {sorted(extra)}" if extra else "")
            )
        return value

    @model_validator(mode="after")
    def _candidates(self) -> Pipeline:
        if self.reranker and self.rerank_candidates < self.top_k:
            raise ValueError(
                f"rerankCandidates ({self.rerank_candidates}) must be >= topK ({self.top_k})"
            )
        return self


class RagConfig(StrictModel):
    """Vector stores on the gateway (OpenAI's Files + Vector Stores API) and pipelines."""

    enabled: bool = Field(
        False, description="Serve /v1/files and /v1/vector_stores and the pipelines."
    )
    embedder: Name | None = Field(
        None, description="The served embed model that embeds every vector store's files."
    )
    chunking: Chunking = Field(default_factory=Chunking, description="How files are split.")
    limits: RagLimits = Field(default_factory=RagLimits, description="Size limits.")
    database: RagDatabase = Field(
        default_factory=RagDatabase, description="The PostgreSQL + pgvector database."
    )
    pipelines: list[Pipeline] = Field(
        default_factory=list, max_length=32, description="Retrieval pipelines served as models."
    )

    @field_validator("pipelines")
    @classmethod
    def _unique(cls, value: list[Pipeline]) -> list[Pipeline]:
        i = first_repeat([p.name for p in value])
        if i is not None:
            raise ValueError(f"pipelines[{i}].name {value[i].name!r} is used by an earlier one")
        return value

    @model_validator(mode="after")
    def _needs_embedder(self) -> RagConfig:
        if self.enabled and self.embedder is None:
            raise ValueError("embedder is required when rag is enabled")
        if self.pipelines and not self.enabled:
            raise ValueError("pipelines need enabled: true")
        return self


__all__ = ["NAME_PATTERN", "Chunking", "Pipeline", "RagConfig", "RagDatabase", "RagLimits"]


def check_rag_references(rag: RagConfig, models: list, aliases: list) -> None:
    """Every model a RAG setting names exists and has the right task; pipeline names are free.

    `models`/`aliases`: ServingConfig's ModelSpec and Alias lists. Errors name the field path.
    """
    tasks = {m.id: m.task for m in models}
    alias_tasks = {a.name: {tasks.get(t.model) for t in a.targets} for a in aliases}

    def need(path: str, name: str, task: str) -> None:
        if name in alias_tasks and task == "generate":
            if alias_tasks[name] != {"generate"}:
                raise ValueError(f"{path} {name!r} is an alias of non-generate models")
            return
        if name not in tasks:
            known = sorted(m for m, t in tasks.items() if t == task)
            raise ValueError(
                f"{path} {name!r} is not a served model (task {task} models: {', '.join(known)})"
            )
        if tasks[name] != task:
            raise ValueError(
                f"{path} {name!r} has task {tasks[name]}; a model with task {task} is needed"
            )

    if rag.embedder is not None:
        need("rag.embedder", rag.embedder, "embed")
    taken = set(tasks) | set(alias_tasks)
    for i, pipe in enumerate(rag.pipelines):
        where = f"rag.pipelines[{i}]"
        if pipe.name in taken:
            raise ValueError(f"{where}.name {pipe.name!r} clashes with a model or alias")
        need(f"{where}.embedder", pipe.embedder, "embed")
        need(f"{where}.generator", pipe.generator, "generate")
        if pipe.reranker is not None:
            need(f"{where}.reranker", pipe.reranker, "score")
