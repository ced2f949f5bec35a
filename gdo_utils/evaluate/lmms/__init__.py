"""lmms-eval as a second engine: the launch command for a checkpoint, task folders for the toy
benchmarks (`--include_path`), and ingestion of an lmms-eval output folder into the kit's C3 schema."""
