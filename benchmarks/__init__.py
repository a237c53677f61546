"""Speed and memory benchmarks of `motionpatches`, run from the repository root as modules.

    python -m benchmarks.preprocessing       # motions -> motion_values, ours vs the reference's per-frame loop
    python -m benchmarks.retrieval_metrics   # 'all'-protocol retrieval metrics, ours vs a per-row argsort loop
    python -m benchmarks.inference           # embeddings per second, ours vs a plain PyTorch forward
    python -m benchmarks.training_step       # one training step, ours vs a plain PyTorch step; the demo's step
    python -m benchmarks.scale_out           # an epoch on this CPU, on 1 and on 8 GPUs, on paper
    python -m benchmarks.search              # MotionIndex queries at 1M x 256: exact, IVF, HNSW vs re-embedding, argsort
    python -m benchmarks.onnx_runtime        # embeddings per second, PyTorch eager vs ONNX Runtime fp32 / int8
    python -m benchmarks.input_pipeline      # batch production's share of a paper-size training step
    python -m benchmarks.moments             # moment retrieval in long built demo sequences vs random / fixed windows

Each takes `--quick` (the seconds-long smoke run the tests use) and `--no-write` (print only; otherwise the
tables are appended to `benchmarks/RESULTS.md`).

Scripts: the modules above, one benchmark each; none imports another. Shared code:
`results` (timing, memory and CPU-load measurement, machine description, tables, RESULTS.md),
`models` (the model sizes, their inputs and our training objective) and `plain_networks` (the plain
PyTorch re-implementation the model benchmarks compare against).
"""
