"""`make bench`: standalone vLLM OpenAI server vs this application, same tiny model, machine and
load (see docs/performance.md). Split by job:

- `designs.py`: the app designs compared (Ray env flags, ServingConfig overrides) and the
  standalone vLLM command with the app's engine arguments;
- `procs.py`: freezing/resuming a server's whole process tree (the idle server is paused);
- `cpu.py`: per-process CPU accounting from /proc;
- `load.py`: the load generator (streamed completions) and its statistics;
- `report.py`: the results table, CPU per request, `build/bench/result-<design>.json`;
- `cli.py`: flags and the run itself (`python -m tools.bench`).

Servers are started, awaited and stopped by `tools.process`, as in the e2e tests.
"""
