"""The paper's chess analyses (§3.7-3.9) and the human majority vote.

- ``reward``: r(x, y) = Stockfish expected score for the mover after y (multipv, lichess WDL, cached).
- ``favor``: denoising; favor of low temperature over τ = 1 on a model's own games (Fig. 4, Table 1).
- ``majority``: the most frequent human move vs the human mixture on real games (new).
- ``diversity``: normalised action entropy of common states per rating cap (Fig. 5).
- ``tsne``: t-SNE of the model's last hidden layer (Fig. 3).
"""
