"""Stage 2 of the chess pipeline: the GPT, exact move scoring, checkpoints and training.

Modules: ``gpt`` (the model, ``score_continuations``, ``load_model``), ``train`` (configs, presets,
the training loop, held-out metrics). Imports only ``chess_exp.data``.
"""
