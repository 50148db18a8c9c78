"""Stage 2 of the chess pipeline: the GPT, exact move scoring, checkpoints and training.

Modules: ``gpt`` (the model, ``score_continuations``), ``checkpoints`` (saving, naming, the one
loader ``load_checkpoint``/``load_model`` for ours, nanoGPT-style and exported checkpoints, and
weights-only export), ``train`` (configs, presets, the training loop, held-out metrics). Imports
only ``chess_exp.data``.
"""
