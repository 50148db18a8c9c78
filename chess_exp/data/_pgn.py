"""Text-level PGN/transcript parsing without replaying boards (the fast path of ``chess_exp.data.readers``).

Everything here works on ``bytes`` with a handful of C-level regex and ``bytes`` operations per
game, which is what makes the ``char`` preparation path fast. What is checked without a board:

- headers: every header line is ``[Tag "value"]``; Result is a known result; ratings are integers;
- movetext: comments, NAGs, ``!?`` annotations, variations and black move numbers are removed;
  what is left must be ``1. W B 2. W B ... RESULT`` with move numbers 1, 2, 3, ... in order and a
  result token equal to the Result header;
- every move is SAN in the canonical lichess/python-chess spelling, checked *per colour*: a White
  pawn only moves to ranks 3-8 and promotes exactly on rank 8 (Black: ranks 6-1, promotes on 1), a
  pawn captures only onto an adjacent file, checkmate (``#``) only on the last move and only by the
  side the result says won, each side castles at most once.

A move that passes these checks can still be illegal in its position (``1.Ke5``); only replaying a
board finds that (``check_legal=True`` in ``read_games``, and always on the ``move`` path).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["Malformed", "RESULTS", "iter_raw_pgn_games", "pgn_chunks", "split_pgn_games", "safe_cut", "parse_headers", "movetext_to_transcript",
           "normalise_transcript", "transcript_to_sans", "sans_to_transcript", "split_evals"]

RESULTS = (b"1-0", b"0-1", b"1/2-1/2", b"*")


class Malformed(Exception):
    """A game that cannot be used; ``reason`` is the short key it is counted under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# --- SAN, per colour --------------------------------------------------------------------------

def _pawn_capture_files() -> str:
    files = "abcdefgh"
    alts = [f"{f}x{files[j]}" for i, f in enumerate(files) for j in (i - 1, i + 1) if 0 <= j < 8]
    return "(?:" + "|".join(alts) + ")"


def _side_san(white: bool) -> str:
    caps = _pawn_capture_files()
    dest = "(?:[3-7]|8=[QRBN])" if white else "(?:[2-6]|1=[QRBN])"
    pawn = f"(?:[a-h]{dest}|{caps}{dest})"
    piece = "[QRBN][a-h]?[1-8]?x?[a-h][1-8]"
    king = "Kx?[a-h][1-8]"
    return f"(?:{pawn}|{piece}|{king}|O-O-O|O-O)[+#]?"


_W = _side_san(True)
_B = _side_san(False)
# the paper's transcript form: "1.e4 e5 2.Nf3 Nc6 3.Bb5"
_TRANSCRIPT_RE = re.compile(f"(?:[0-9]+\\.{_W} {_B} )*[0-9]+\\.{_W}(?: {_B})?".encode())
_GENERIC_SAN_RE = re.compile(
    rb"(?:[a-h](?:x[a-h])?[1-8](?:=?[QRBNqrbn])?|[KQRBN][a-h]?[1-8]?x?[a-h][1-8]|O-O-O|O-O)[+#]?")
_NUM_RE = re.compile(rb"([0-9]+)\.")
_MOVE_NUMBERS = [str(i).encode() for i in range(1, 5001)]

# --- movetext clean-up ------------------------------------------------------------------------

_COMMENT_RE = re.compile(rb"\{[^{}]*\}")
_LINE_COMMENT_RE = re.compile(rb";[^\n]*")
_VARIATION_RE = re.compile(rb"\([^()]*\)")
_NAG_RE = re.compile(rb"\$[0-9]+")
_BLACK_NUM_RE = re.compile(rb"[0-9]+\.\.\.")
_ANNOT_RE = re.compile(rb"[!?]+")
_ALLOWED = frozenset(b"0123456789abcdefghKQRBNOx=+#-./* \t\r\n")
_EVAL_RE = re.compile(rb"\[%eval\s+([^\]\s]+)\s*\]")

_HEADER_LINE_RE = re.compile(rb'\[([A-Za-z0-9_]+)[ \t]+"((?:[^"\\\n]|\\.)*)"[ \t]*\][ \t]*\r?$', re.M)
_UNESCAPE_RE = re.compile(rb"\\(.)")


def iter_raw_pgn_games(stream: BinaryIO, chunk_size: int = 1 << 22) -> Iterator[bytes]:
    """Yield the raw bytes of each game (headers + movetext) of a PGN byte stream, in order.

    Constant memory: at most one chunk plus one game is held. Where the games are is decided the
    way python-chess's ``read_game`` decides it (see :func:`split_pgn_games`).
    """
    for chunk in pgn_chunks(stream, chunk_size):
        yield from split_pgn_games(chunk)


def pgn_chunks(stream: BinaryIO, chunk_size: int = 1 << 22) -> Iterator[bytes]:
    """Cut a PGN byte stream into chunks of whole games (``\r\n`` turned into ``\n``).

    A chunk ends just before a header line that follows a movetext line and a blank line (the start
    of a game under every reading), so :func:`split_pgn_games` gives the same games whether it is
    run on the whole stream or chunk by chunk; chunks can therefore be parsed in parallel.
    """
    carry = b""
    first = True
    while True:
        block = stream.read(chunk_size)
        if not block:
            break
        if b"\r" in block:
            if block.endswith(b"\r"):  # a "\r\n" split by the chunk boundary
                block += stream.read(1)
            block = block.replace(b"\r\n", b"\n")
        buf = carry + block if carry else block
        if first:
            buf = buf.lstrip(b"\xef\xbb\xbf")
            first = False
        cut = safe_cut(buf)
        if cut <= 0 and len(buf) > 8 * chunk_size:  # no header line for long (games without headers):
            cut = buf.rfind(b"\n\n") + 2  # cut after a blank line, which ends a game's movetext
        if cut <= 1:
            carry = buf
            continue
        yield buf[:cut]
        carry = buf[cut:]
    if carry.strip():
        yield carry


def safe_cut(buf: bytes) -> int:
    """The last position in ``buf`` where a game certainly starts: a header line whose previous
    non-blank line is movetext with its comments closed. -1 if there is none."""
    end = len(buf)
    while True:
        i = buf.rfind(b"\n[", 0, end)
        if i < 0:
            return -1
        j = i
        while True:  # the previous non-blank line
            k = buf.rfind(b"\n", 0, j)
            line = buf[k + 1:j]
            if line.strip() or k < 0:
                break
            j = k
        if (line.strip() and not line.startswith((b"[", b"%")) and not _open_comment(line, False)
                and (b"}" not in line or 0 <= line.find(b"{") < line.find(b"}"))):
            return i + 1
        end = i


def _open_comment(line: bytes, depth: bool) -> bool:
    """Whether a ``{`` comment is still open after ``line`` (``depth``: open before it)."""
    if depth:
        k = line.find(b"}")
        if k < 0:
            return True
        line = line[k + 1:]
    while True:
        k = line.find(b"{")
        if k < 0:
            return False
        semi = line.find(b";")
        if 0 <= semi < k:  # a rest-of-line comment hides the brace
            return False
        close = line.find(b"}", k)
        if close < 0:
            return True
        line = line[close + 1:]


def split_pgn_games(chunk: bytes) -> list[bytes]:
    """The games of a chunk of PGN text (``\n`` line ends), each as ``headers + b"\n\n" + movetext``.

    The rules are python-chess's: header lines (``[...]``) start a game; the movetext runs to the
    next blank line (outside a ``{}`` comment), so a game without headers is a game of its own, and a
    header line right after movetext starts the next game even without a blank line between (where
    python-chess reads that game's moves but drops its headers, its headers are kept here). Lines
    starting with ``%`` are ignored. A headerless game comes out as ``b"\n\n" + movetext``.
    """
    chunk = chunk.strip(b" \t\n")
    pieces = chunk.split(b"\n\n[")
    if _REGULAR_CHUNK_RE.fullmatch(chunk) is not None:  # the lichess layout throughout: one C-level check
        return [pieces[0]] + [b"[" + piece for piece in pieces[1:]]
    percent = b"\n%" in chunk  # escape lines are rare: checked per game only when the chunk has one
    games: list[bytes] = []
    pending = b""  # header-only pieces wait for their movetext (a blank line between headers)
    for k, piece in enumerate(pieces):
        if k:
            piece = b"[" + piece
        if pending:
            piece = pending + b"\n\n" + piece
            pending = b""
        head, sep, movetext = piece.partition(b"\n\n")
        if (sep and head.startswith(b"[") and head.count(b"\n") == head.count(b"\n[")
                and b"\n\n" not in movetext and b"\n[" not in movetext and not movetext.startswith((b"[", b"%"))
                and movetext and not movetext.isspace() and not (percent and b"\n%" in piece)):
            games.append(piece.rstrip(b" \t\n"))  # the common layout: headers, blank line, movetext
            continue
        if (k + 1 < len(pieces) and not piece.endswith(b"\n") and not pieces[k + 1].startswith(b"Event ")
                and _headers_only(piece)):
            # one blank line between header lines: python-chess reads on in the same header block (but
            # headers cut short and followed by a new game's [Event ...] stay a game of their own)
            pending = piece
            continue
        games.extend(_split_lines(piece))
    if pending:
        games.extend(_split_lines(pending))
    return games


# games laid out as lichess writes them: header lines, one blank line, movetext lines (none blank,
# none starting with "[" or "%"), one blank line before the next game
_REGULAR_GAME = rb"\[[^\n]*(?:\n\[[^\n]*)*\n\n[^\[\n%\s][^\n]*(?:\n[^\[\n%\s][^\n]*)*"
_REGULAR_CHUNK_RE = re.compile(_REGULAR_GAME + rb"(?:\n\n" + _REGULAR_GAME + rb")*")


def _headers_only(piece: bytes) -> bool:
    return all(not line.strip() or line.startswith((b"[", b"%")) for line in piece.split(b"\n"))


def _split_lines(text: bytes) -> list[bytes]:
    """The slow, line-by-line reading of :func:`split_pgn_games` for unusual layouts."""
    games: list[bytes] = []
    head: list[bytes] = []
    moves: list[bytes] = []
    in_comment = False

    def flush() -> None:
        if head or moves:
            games.append(b"\n".join(head) + b"\n\n" + b"\n".join(moves))
        head.clear()
        moves.clear()

    for line in text.split(b"\n"):
        if in_comment:
            moves.append(line)
            in_comment = _open_comment(line, True)
            continue
        if line.startswith(b"%"):
            continue
        if not line.strip():
            if moves:
                flush()
            continue
        if line.startswith(b"["):
            if moves:
                flush()
            head.append(line.rstrip(b" \t"))
            continue
        moves.append(line)
        in_comment = _open_comment(line, False)
    flush()
    return games


def parse_headers(head: bytes) -> dict[bytes, bytes]:
    """Parse a header block (lines ``[Tag "value"]``); raise Malformed("bad_header") on any other line."""
    pairs = _HEADER_LINE_RE.findall(head)
    n_lines = head.count(b"\n") + 1 - head.count(b"\n\n")  # tolerate blank lines
    if len(pairs) != n_lines or not pairs:
        raise Malformed("bad_header", "a header line is not [Tag \"value\"]")
    headers: dict[bytes, bytes] = {}
    for key, value in pairs:
        headers.setdefault(key, value)  # a repeated tag: the first one counts (as in header_value)
    for key, value in headers.items():
        if b"\\" in value:
            headers[key] = _UNESCAPE_RE.sub(rb"\1", value)
    return headers


_HEADER_BLOCK_RE = re.compile(rb'(?:\[[A-Za-z0-9_]+ "(?:[^"\n\\]|\\.)*"\]\n)*\[[A-Za-z0-9_]+ "(?:[^"\n\\]|\\.)*"\]')


def header_block_ok(head: bytes) -> bool:
    """One C-level match: is every line of the header block exactly ``[Tag "value"]``?

    False does not mean malformed: ``parse_headers`` then decides (it accepts odd spacing). Every
    block accepted here is accepted by ``parse_headers`` too."""
    return _HEADER_BLOCK_RE.fullmatch(head) is not None


def header_value(head: bytes, key: bytes) -> bytes | None:
    """The value of tag ``key`` in a header block that passed ``header_block_ok`` (None if absent)."""
    if head.startswith(b"[" + key + b' "'):
        i = len(key) + 3
    else:
        i = head.find(b"\n[" + key + b' "')
        if i < 0:
            return None
        i += len(key) + 4
    j = head.find(b'"]', i)
    value = head[i:j]
    if b"\\" in value:
        value = _UNESCAPE_RE.sub(rb"\1", value)
    return value


def _strip_annotations(movetext: bytes) -> bytes:
    m = movetext
    if b"{" in m or b"}" in m:
        m = _COMMENT_RE.sub(b" ", m)
        if b"{" in m:
            raise Malformed("truncated", "unterminated comment")
        if b"}" in m:
            raise Malformed("bad_movetext", "'}' without '{'")
    if b";" in m:
        m = _LINE_COMMENT_RE.sub(b" ", m)
    if b"(" in m or b")" in m:
        for _ in range(64):
            m2 = _VARIATION_RE.sub(b" ", m)
            if m2 == m:
                break
            m = m2
        if b"(" in m:
            raise Malformed("truncated", "unterminated variation")
        if b")" in m:
            raise Malformed("bad_movetext", "')' without '('")
    if b"$" in m:
        m = _NAG_RE.sub(b" ", m)
    if b"..." in m:
        m = _BLACK_NUM_RE.sub(b" ", m)
    if b"!" in m or b"?" in m:
        m = _ANNOT_RE.sub(b"", m)
    return m


def movetext_to_transcript(movetext: bytes) -> tuple[bytes, bytes, int]:
    """PGN movetext -> (transcript ``1.e4 e5 2.Nf3``, result token, number of plies).

    Raises Malformed with the reason when the movetext is not a complete, well-formed game.
    """
    fast = _fast_transcript(movetext)
    if fast is not None:
        return fast
    m = b" ".join(_strip_annotations(movetext).split())
    if b"0-0" in m:  # castling written with zeros (no result token contains "0-0")
        m = m.replace(b"0-0-0", b"O-O-O").replace(b"0-0", b"O-O")
    head, _, result = m.rpartition(b" ")
    if result not in RESULTS:
        _diagnose(m, has_result=False)
    if not head:
        raise Malformed("no_moves")
    t = head.replace(b". ", b".")
    return _validated(t, m), result, t.count(b" ") + 1


_WNUMS = [b"%d." % i for i in range(1, 5001)]
_BNUMS = [b"%d..." % i for i in range(1, 5001)]


def _fast_transcript(movetext: bytes) -> tuple[bytes, bytes, int] | None:
    """The common layouts (lichess ``1. e4 { c } 1... e5 { c }`` and plain ``1. e4 e5``) with C-level
    list and set operations only. None means "not recognised": the general path decides."""
    if b"{" in movetext:
        parts = movetext.replace(b"}", b"{").split(b"{")
        if len(parts) % 2 == 0:
            return None
        outside = b" ".join(parts[::2])
    else:
        outside = movetext
    if b"(" in outside or b";" in outside or b"$" in outside or b"}" in outside:
        return None
    tokens = outside.split()
    if not tokens:
        return None
    result = tokens.pop()
    n = len(tokens)
    if result not in RESULTS or n == 0:
        return None
    if n >= 4 and tokens[2] == b"1...":  # lichess with comments: "1. W 1... B 2. W 2... B"
        whites, blacks = tokens[1::4], tokens[3::4]
        if n % 4 not in (0, 2) or tokens[0::4] != _WNUMS[: len(whites)] or tokens[2::4] != _BNUMS[: len(blacks)]:
            return None
        del tokens[2::4]
    else:  # "1. W B 2. W B"
        whites, blacks = tokens[1::3], tokens[2::3]
        if n % 3 == 1 or tokens[0::3] != _WNUMS[: len(whites)]:
            return None
    white_set, black_set = _san_sets()
    if not (white_set.issuperset(whites) and black_set.issuperset(blacks)):
        return None
    t = b" ".join(tokens).replace(b". ", b".")
    return _validated(t, b"", checked=True), result, len(whites) + len(blacks)


_SAN_SETS: tuple[frozenset, frozenset] | None = None


def _san_sets() -> tuple[frozenset, frozenset]:
    """Every SAN the per-colour regexes accept, except full-square disambiguation (``Qd1f3``, rare;
    those take the regex path). About 27k strings per colour, built on first use."""
    global _SAN_SETS
    if _SAN_SETS is None:
        files, ranks = "abcdefgh", "12345678"
        squares = [f + r for r in ranks for f in files]
        shared = [f"K{x}{sq}" for x in ("", "x") for sq in squares]
        shared += [f"{p}{d}{x}{sq}" for p in "QRBN" for d in ("", *files, *ranks) for x in ("", "x")
                   for sq in squares]
        shared += ["O-O", "O-O-O"]
        sets = []
        for white in (True, False):
            pushes, promo_rank = ("34567", "8") if white else ("23456", "1")
            pawn = [f + r for f in files for r in pushes]
            pawn += [f + promo_rank + "=" + p for f in files for p in "QRBN"]
            caps = [f"{f}x{files[j]}" for i, f in enumerate(files) for j in (i - 1, i + 1) if 0 <= j < 8]
            pawn += [c + r for c in caps for r in pushes]
            pawn += [c + promo_rank + "=" + p for c in caps for p in "QRBN"]
            base = shared + pawn
            sets.append(frozenset(s.encode() + suffix for s in base for suffix in (b"", b"+", b"#")))
        _SAN_SETS = (sets[0], sets[1])
    return _SAN_SETS


def normalise_transcript(text: bytes) -> bytes:
    """Accept a transcript in any of ``;1.e4 e5 2.Nf3``, ``1. e4 e5``, ``1. e4 1... e5`` and return
    the canonical ``1.e4 e5 2.Nf3`` (validated like PGN movetext, without a result token)."""
    m = text.strip()
    if m.startswith(b";"):
        m = m[1:]
    m = b" ".join(_strip_annotations(m).split())
    if b"0-0" in m:
        m = m.replace(b"0-0-0", b"O-O-O").replace(b"0-0", b"O-O")
    tail = m.rpartition(b" ")[2]
    if tail in RESULTS:  # a trailing result is allowed and dropped
        m = m[: len(m) - len(tail)].rstrip()
    if not m:
        raise Malformed("no_moves")
    t = m.replace(b". ", b".")
    return _validated(t, m + b" *")


def _validated(t: bytes, m_for_diagnosis: bytes, *, checked: bool = False) -> bytes:
    if not checked:
        if _TRANSCRIPT_RE.fullmatch(t) is None:
            _diagnose(m_for_diagnosis, has_result=True)
        nums = _NUM_RE.findall(t)
        if nums != _MOVE_NUMBERS[: len(nums)]:
            raise Malformed("bad_movetext", "move numbers out of order" if len(nums) <= len(_MOVE_NUMBERS)
                            else "more than 5000 moves")
    mate = t.find(b"#")
    if mate != -1 and mate != len(t) - 1:
        raise Malformed("illegal_move", "checkmate before the last move")
    castles = t.count(b"O-O")
    if castles > 1:
        white = t.count(b".O-O")
        if white > 1 or castles - white > 1:
            raise Malformed("illegal_move", "a side castles twice")
    return t


def _diagnose(m: bytes, *, has_result: bool) -> None:
    """Work out why a cleaned movetext failed the fast check (slow; only for bad games)."""
    if not _ALLOWED.issuperset(m):
        bad = bytes(sorted(set(m) - _ALLOWED))[:10]
        raise Malformed("unknown_characters", repr(bad))
    tokens = m.split()
    if not has_result or (tokens and tokens[-1] not in RESULTS):
        raise Malformed("truncated", "no result at the end of the movetext")
    ply = 0
    for tok in m.replace(b".", b". ").split()[:-1]:
        if tok.endswith(b"."):
            continue
        pattern = _W if ply % 2 == 0 else _B
        if _GENERIC_SAN_RE.fullmatch(tok) is None:
            raise Malformed("bad_movetext", f"not a SAN move: {tok[:20]!r}")
        if re.fullmatch(pattern.encode(), tok) is None:
            raise Malformed("illegal_move", f"impossible move for {'White' if ply % 2 == 0 else 'Black'}: "
                            f"{tok.decode()}")
        ply += 1
    raise Malformed("bad_movetext", "moves and move numbers do not alternate")


def transcript_to_sans(t: bytes) -> list[str]:
    """``1.e4 e5 2.Nf3`` -> ``["e4", "e5", "Nf3"]``."""
    return _NUM_RE.sub(b"", t).decode("ascii").split(" ")


def sans_to_transcript(sans: list[str] | tuple[str, ...]) -> str:
    """``["e4", "e5", "Nf3"]`` -> ``1.e4 e5 2.Nf3`` (no validation)."""
    parts = []
    for i in range(0, len(sans), 2):
        parts.append(f"{i // 2 + 1}.{sans[i]}")
        if i + 1 < len(sans):
            parts.append(sans[i + 1])
    return " ".join(parts)


def split_evals(movetext: bytes, n_plies: int) -> tuple[str | None, ...]:
    """The ``[%eval X]`` value of the comment after each ply (None where a ply has none)."""
    evals: list[str | None] = []
    if b"(" in movetext:  # comments inside variations belong to no main-line ply
        for _ in range(64):
            stripped = _VARIATION_RE.sub(b" ", movetext)
            if stripped == movetext:
                break
            movetext = stripped
    for match in _EVAL_TOKEN_RE.finditer(movetext):
        comment, token = match.group(1), match.group(2)
        if comment is not None:
            if evals and evals[-1] is None:
                ev = _EVAL_RE.search(comment)
                if ev:
                    evals[-1] = ev.group(1).decode("ascii", "replace")
        elif not token[:1].isdigit() and not token.startswith(b"$") and token != b"*":
            evals.append(None)
    evals.extend([None] * (n_plies - len(evals)))
    return tuple(evals[:n_plies])


_EVAL_TOKEN_RE = re.compile(rb"\{([^{}]*)\}|([^\s{}()]+)")
