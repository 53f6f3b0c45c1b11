"""Rewriting a response body on its way out: charset, content coding, streaming.

:class:`BodyRewriter` sits between the application's body and the client. It
takes the body in the pieces the application gives (``feed``), and gives back
pieces to send (often ``b""`` while it waits for the rest of a number);
``close`` gives the rest. It is three layers:

1. the content codings (``Content-Encoding``: ``gzip``/``x-gzip``, ``deflate``
   zlib-wrapped or raw, ``br``, or a list of them) are decoded incrementally,
   never more than ``_PIECE`` bytes of output at a time, so a small compressed
   body that expands to gigabytes is never held in memory;
2. the text, in its charset, goes through the page rewriter's byte stream
   (``make_stream(codec)``, a :class:`~dni_engine.rewrite.ByteRewriteStream`);
3. what the rewriter gives out is encoded again in the same codings, flushed
   (``Z_SYNC_FLUSH``, brotli ``flush``) whenever there is output, so a streamed
   page stays streamed.

The charset is, as a browser decides it (the HTML standard's "encoding
sniffing"): a byte order mark; else the ``charset`` of ``Content-Type``; else,
for HTML, a ``<meta charset>`` or ``<meta http-equiv="Content-Type">`` found by
the standard's prescan of the first 1024 bytes (held back until the prescan
decides); for XHTML the XML declaration's ``encoding``; else UTF-8 (the byte
stream decodes with ``surrogateescape``, so bytes that are not UTF-8 pass
through as they are). Labels are read as the Encoding Standard reads them:
``iso-8859-1``, ``us-ascii`` and ``latin1`` mean windows-1252, ``shift_jis``
means cp932, ``euc-kr`` cp949, ``gb2312`` gbk, ``big5`` big5hkscs.

What passes through untouched (exactly the bytes the application gave):

- a body whose content coding is unknown, or ``br`` without the ``brotli`` /
  ``brotlicffi`` module (logged once);
- an unknown charset in ``Content-Type`` (an unknown one in a ``<meta>`` is
  skipped, as browsers skip it), one that is not ASCII-compatible (UTF-16,
  UTF-32, EBCDIC) or a stateful one (ISO-2022, UTF-7, HZ);
- a body whose charset does not decode and encode back to the same bytes
  (checked piece by piece for every codec but UTF-8, ASCII, latin-1 and
  windows-1252, where it always holds);
- a body whose coding fails to decode, or that holds back more than
  ``max_buffer`` bytes, before anything was given out;
- a body for which ``make_stream`` gives no stream, or raises;
- a body that nothing was given out of and nothing changed in by its end (the
  original bytes, with their compression, are as good).

Once something was given out, the original bytes can no longer be spliced in
(for a compressed body, what went out is this object's own compressed stream):

- the charset check failing, or more than ``max_buffer`` bytes held back: the
  rewriter is closed (what it held goes out) and the rest of the text passes
  through unrewritten, still re-encoded;
- the coding failing to decode (a corrupt or truncated gzip member): what was
  decoded goes out and the re-encoded stream is ended cleanly, so the client
  sees a valid body that ends where the original became unreadable (as the
  client's own decoder would have); logged once;
- any other failure inside this object: for an identity body the rest passes
  through as given; for a compressed one the stream is ended cleanly. Logged
  once per kind.

Nothing here raises into the host: ``feed`` and ``close`` always return bytes.
For a body known whole, :meth:`BodyRewriter.rewrite_whole` (or the function
:func:`rewrite_whole`) gives the rewritten body, the very ``body`` object when
it goes out as it came, or ``None`` after a failure inside this module.
"""

from __future__ import annotations

import codecs
import importlib
import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Protocol

from dni_engine.rewrite import ByteRewriteStream

__all__ = ["BodyRewriter", "MakeStream", "charset_of", "codec_of", "rewrite_whole"]

_log = logging.getLogger(__name__)

MakeStream = Callable[[str], ByteRewriteStream | None]
"""Builds the page rewriter's byte stream for a charset (a Python codec name);
``None`` when there is nothing to swap."""

_PIECE = 65_536  # most output one decompression step makes
_WHOLE_RATIO = 16  # a whole body may hold back this many times its length
_PRESCAN = 1024  # bytes the HTML prescan looks at
# Codecs whose decode->encode (with surrogateescape) gives back every byte string.
_ROUND_TRIP = frozenset({"utf-8", "ascii", "latin-1", "cp1252"})
_STATEFUL = ("iso2022", "utf-7", "hz", "utf-16", "utf-32", "utf_16", "utf_32")
# The Encoding Standard's reading of labels Python reads otherwise.
_LABELS = {
    **dict.fromkeys(
        (
            "ansi_x3.4-1968",
            "ascii",
            "cp1252",
            "cp819",
            "csisolatin1",
            "ibm819",
            "iso-8859-1",
            "iso-ir-100",
            "iso8859-1",
            "iso88591",
            "iso_8859-1",
            "iso_8859-1:1987",
            "l1",
            "latin1",
            "us-ascii",
            "windows-1252",
            "x-cp1252",
            "x-user-defined",
        ),
        "cp1252",
    ),
    **dict.fromkeys(
        (
            "iso-8859-9",
            "iso8859-9",
            "iso88599",
            "iso_8859-9",
            "iso_8859-9:1989",
            "l5",
            "latin5",
            "windows-1254",
        ),
        "cp1254",
    ),
    **dict.fromkeys(("iso-8859-11", "iso8859-11", "tis-620", "windows-874"), "cp874"),
    **dict.fromkeys(
        ("shift_jis", "shift-jis", "sjis", "ms_kanji", "x-sjis", "windows-31j", "csshiftjis"),
        "cp932",
    ),
    **dict.fromkeys(
        ("euc-kr", "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601", "korean", "windows-949"),
        "cp949",
    ),
    **dict.fromkeys(("gb2312", "gb_2312", "gb_2312-80", "x-gbk", "chinese", "csgb2312"), "gbk"),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"), "big5hkscs"),
}
# What a label looks like (Python's codec lookup would read "shift_jis/" too).
_LABEL = re.compile(r"[a-z0-9]+(?:[._:-][a-z0-9]+)*", re.ASCII)
_PROBE = "<a href='tel:+1 (0)23-45.67/89'>0123456789</a>;=\"\n\t"

_logged: set[str] = set()
_logged_lock = threading.Lock()


def _once(kind: str, message: str, *args: object, exc_info: bool = False) -> None:
    """Log ``message`` at warning level the first time ``kind`` happens."""
    with _logged_lock:
        if kind in _logged:
            return
        _logged.add(kind)
    _log.warning(message, *args, exc_info=exc_info)


# -- charsets ----------------------------------------------------------------------

_PARAM = re.compile(
    r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.ASCII
)


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value, lower-cased, unquoted
    and stripped (``'text/html; charset="UTF-8"'`` gives ``"utf-8"``); ``None``
    when there is none (or it is empty). Never raises."""
    if not isinstance(content_type, str):
        return None
    for match in _PARAM.finditer(content_type):
        if match.group(1).lower() != "charset":
            continue
        value = match.group(2).strip()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:].removesuffix('"'))
        value = value.strip().lower()
        return value or None
    return None


def codec_of(label: str) -> str | None:
    """The Python codec a charset label names, as a browser reads the label (the
    Encoding Standard's aliases first: ``iso-8859-1`` is windows-1252), when the
    page rewriter can work in it: ASCII-compatible and stateless. ``None`` for
    an unknown label or a codec that cannot be rewritten (UTF-16, UTF-32,
    EBCDIC, ISO-2022, UTF-7...). Never raises."""
    try:
        label = label.strip().lower()
        if not _LABEL.fullmatch(label):
            return None
        name = _LABELS.get(label, label)
        name = codecs.lookup(name).name
        if name.startswith(_STATEFUL):
            return None
        probe = _PROBE.encode(name)
        if probe != _PROBE.encode("ascii") or probe.decode(name) != _PROBE:
            return None
    except Exception:  # an unknown label, or not a text codec
        return None
    return name


_SPACE = b" \t\n\f\r"
_LETTERS = frozenset(bytes((c,)) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _known(label: str) -> bool:
    """Whether a charset label names an encoding at all (an unknown one in a
    ``<meta>`` is skipped, as browsers skip it)."""
    label = label.lower()
    if not _LABEL.fullmatch(label):
        return False
    try:
        codecs.lookup(_LABELS.get(label, label))
    except LookupError:
        return False
    return True


class _More(Exception):
    """The prescan ran off the end of what came so far."""


def _prescan(data: bytes, final: bool) -> str | None:
    """The HTML standard's prescan for a ``<meta>`` charset over ``data`` (at most
    the first 1024 bytes): the label found, ``None`` for none. Raises
    :class:`_More` when more bytes may still change the answer (not ``final``)."""
    n = len(data)
    lower = data.lower()
    pos = 0

    def end() -> NoReturn:
        if not final:
            raise _More
        raise _Abort

    def attribute() -> tuple[bytes, bytes] | None:
        nonlocal pos
        while pos < n and (data[pos] in _SPACE or data[pos] == 0x2F):
            pos += 1
        if pos >= n:
            end()
        if data[pos] == 0x3E:
            return None
        start = pos
        while True:
            if pos >= n:
                end()
            c = data[pos]
            if c == 0x3D and pos > start:
                name = lower[start:pos]
                pos += 1
                break
            if c in _SPACE:
                name = lower[start:pos]
                while pos < n and data[pos] in _SPACE:
                    pos += 1
                if pos >= n:
                    end()
                if data[pos] != 0x3D:
                    return name, b""
                pos += 1
                break
            if c in (0x2F, 0x3E):
                return lower[start:pos], b""
            pos += 1
        while pos < n and data[pos] in _SPACE:
            pos += 1
        if pos >= n:
            end()
        c = data[pos]
        if c in (0x22, 0x27):
            close = data.find(bytes((c,)), pos + 1)
            if close < 0:
                end()
            value = lower[pos + 1 : close]
            pos = close + 1
            return name, value
        if c == 0x3E:
            return name, b""
        start = pos
        while pos < n and data[pos] not in _SPACE and data[pos] != 0x3E:
            pos += 1
        if pos >= n:
            end()
        return name, lower[start:pos]

    try:
        while pos < n:
            if data.startswith(b"<!--", pos):
                close = data.find(b"-->", pos + 2)
                if close < 0:
                    end()
                pos = close + 3
                continue
            if lower.startswith(b"<meta", pos) and pos + 5 < n and data[pos + 5] in b" \t\n\f\r/":
                pos += 6
                seen: set[bytes] = set()
                got_pragma = False
                need_pragma: bool | None = None
                charset: bytes | None = None
                while (attr := attribute()) is not None:
                    name, value = attr
                    if name in seen:
                        continue
                    seen.add(name)
                    if name == b"http-equiv":
                        got_pragma = got_pragma or value == b"content-type"
                    elif name == b"content" and charset is None:
                        found = _charset_in_content(value)
                        if found is not None:
                            charset, need_pragma = found, True
                    elif name == b"charset":
                        charset, need_pragma = value, False
                if (
                    charset is not None
                    and need_pragma is not None
                    and (got_pragma or not need_pragma)
                    and (label := charset.decode("latin-1").strip(" \t\n\f\r"))
                    and _known(label)
                ):
                    if label.startswith(("utf-16", "utf16")):
                        return "utf-8"
                    return label
            elif data[pos] == 0x3C and (
                data[pos + 1 : pos + 2] in _LETTERS
                or (data[pos + 1 : pos + 2] == b"/" and data[pos + 2 : pos + 3] in _LETTERS)
            ):
                while pos < n and data[pos] not in _SPACE and data[pos] != 0x3E:
                    pos += 1
                if pos >= n:
                    end()
                while attribute() is not None:
                    pass
            elif data.startswith((b"<!", b"</", b"<?"), pos):
                close = data.find(b">", pos)
                if close < 0:
                    end()
                pos = close
            elif data[pos] == 0x3C and pos + 2 >= n and not final:
                raise _More
            pos += 1
    except _Abort:
        return None
    if not final:
        raise _More
    return None


class _Abort(Exception):
    """The prescan ran off the end of the bytes it may look at: no answer."""


def _charset_in_content(value: bytes) -> bytes | None:
    """The HTML standard's "extracting a character encoding from a meta element"."""
    pos = 0
    while True:
        at = value.find(b"charset", pos)
        if at < 0:
            return None
        pos = at + 7
        while pos < len(value) and value[pos] in _SPACE:
            pos += 1
        if pos >= len(value) or value[pos] != 0x3D:
            continue
        pos += 1
        while pos < len(value) and value[pos] in _SPACE:
            pos += 1
        if pos >= len(value):
            return None
        c = value[pos]
        if c in (0x22, 0x27):
            close = value.find(bytes((c,)), pos + 1)
            return value[pos + 1 : close] if close >= 0 else None
        start = pos
        while pos < len(value) and value[pos] not in _SPACE and value[pos] != 0x3B:
            pos += 1
        return value[start:pos]


_XML_DECL = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _bom(data: bytes) -> str | None:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    if data.startswith((b"\xfe\xff", b"\xff\xfe")):
        return "utf-16"
    return None


# -- content codings ---------------------------------------------------------------


class _DecodeError(Exception):
    """A content coding could not be decoded."""


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


class _Encoder(Protocol):
    def encode(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def finish(self) -> bytes: ...


class _ZlibDecoder:
    """``gzip`` (concatenated members too) or ``deflate`` (zlib-wrapped or raw,
    told apart by the zlib header, as browsers do)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._d: Any = zlib.decompressobj(31) if gzip else None
        self._head = b""  # deflate: the first bytes, until the wrapping is known
        self.wbits = 31 if gzip else 15
        self._after = b""  # gzip: bytes after a member's end, until a new one is known
        self._trailing = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:
            self._head += data
            if len(self._head) < 2:
                return
            b0, b1 = self._head[0], self._head[1]
            zlib_header = (b0 & 0x0F) == 8 and (b0 >> 4) <= 7 and (b0 << 8 | b1) % 31 == 0
            self.wbits = 15 if zlib_header else -15
            self._d = zlib.decompressobj(self.wbits)
            data, self._head = self._head, b""
        yield from self._run(data)

    def _run(self, data: bytes) -> Iterator[bytes]:
        full = False  # the last step gave all it may: the decompressor may hold more
        while not self._trailing:
            if self._d.eof:
                data = self._after + data
                self._after = b""
                if not data:
                    return
                if self._gzip and len(data) < 2:
                    self._after = data
                    return
                if not self._gzip or not data.startswith(b"\x1f\x8b"):
                    # Bytes after the end of the body: clients ignore them too.
                    self._trailing = True
                    _once("body-trailing", "bytes after the end of a compressed body dropped")
                    return
                self._d = zlib.decompressobj(31)
            elif not data and not full:
                return
            try:
                out = self._d.decompress(data, _PIECE)
            except zlib.error as e:
                raise _DecodeError(str(e)) from e
            full = len(out) >= _PIECE
            data = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            if out:
                yield out

    def finish(self) -> Iterator[bytes]:
        if self._d is None:
            if self._head:
                raise _DecodeError("a deflate body of one byte")
            return
        if self._trailing or (self._d.eof and self._after):
            return
        try:
            out = self._d.flush()
        except zlib.error as e:
            raise _DecodeError(str(e)) from e
        if out:
            yield out
        if not self._d.eof:
            raise _DecodeError("the compressed body ends early")


class _ZlibEncoder:
    def __init__(self, wbits: int) -> None:
        self._c = zlib.compressobj(6, zlib.DEFLATED, wbits)

    def encode(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


def _brotli_module() -> Any:
    """The ``brotli`` module, else ``brotlicffi`` (the same API), else ``None``."""
    for name in ("brotli", "brotlicffi"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_brotli: Any = _brotli_module()
_BROTLI_QUALITY = 5  # an on-the-fly quality: 11 costs tens of ms per 100 KB


class _BrotliDecoder:
    def __init__(self) -> None:
        self._d: Any = _brotli.Decompressor()
        # brotli >= 1.2 bounds each step's output; older ones are fed small slices.
        self._bounded = hasattr(self._d, "can_accept_more_data")

    def decode(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        try:
            if not data:
                return
            if d.is_finished():
                _once("body-trailing", "bytes after the end of a compressed body dropped")
                return
            if self._bounded:
                out = d.process(data, output_buffer_limit=_PIECE)
                if out:
                    yield out
                while not d.can_accept_more_data():
                    out = d.process(b"", output_buffer_limit=_PIECE)
                    if out:
                        yield out
                return
            for at in range(0, len(data), 1024):
                if d.is_finished():
                    _once("body-trailing", "bytes after the end of a compressed body dropped")
                    return
                out = d.process(data[at : at + 1024])
                if out:
                    yield out
        except _brotli.error as e:
            raise _DecodeError(str(e)) from e

    def finish(self) -> Iterator[bytes]:
        d = self._d
        try:
            # A bounded step may leave output in the decoder once all the input
            # is taken (a body compressed very well): it is drained here.
            while self._bounded and not d.is_finished():
                out = d.process(b"", output_buffer_limit=_PIECE)
                if not out:
                    break
                yield out
            finished = d.is_finished()
        except _brotli.error as e:
            raise _DecodeError(str(e)) from e
        if not finished:
            raise _DecodeError("the compressed body ends early")


class _BrotliEncoder:
    def __init__(self) -> None:
        self._c: Any = _brotli.Compressor(mode=_brotli.MODE_TEXT, quality=_BROTLI_QUALITY)

    def encode(self, data: bytes) -> bytes:
        return bytes(self._c.process(data))

    def flush(self) -> bytes:
        return bytes(self._c.flush())

    def finish(self) -> bytes:
        return bytes(self._c.finish())


_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br"}


def _codings(content_encoding: str | None) -> list[str] | None:
    """The codings of a ``Content-Encoding`` value, in the order applied; ``None``
    when one is unknown or not installed (the body then passes through)."""
    if content_encoding is None:
        return []
    out = []
    for part in str(content_encoding).split(","):
        token = part.strip().lower()
        if not token or token == "identity":
            continue
        coding = _CODINGS.get(token)
        if coding is None:
            name = token[:20]
            _once(f"coding-{name}", "bodies in Content-Encoding %r passed through", name)
            return None
        if coding == "br" and _brotli is None:
            _once(
                "coding-br",
                "br bodies passed through: neither brotli nor brotlicffi is installed",
            )
            return None
        out.append(coding)
    return out


# -- the text ----------------------------------------------------------------------


class _Text:
    """Plain body bytes in, plain body bytes out: the charset decided, the
    rewriter's stream fed, the round trip checked, the hold bounded."""

    def __init__(
        self,
        make_stream: MakeStream,
        content_type: str | None,
        max_buffer: int,
    ) -> None:
        self._make_stream = make_stream
        self._declared = charset_of(content_type)
        media = (content_type or "").split(";", 1)[0].strip().lower()
        self._xml = media.endswith(("+xml", "/xml"))
        self.max_buffer = max_buffer
        self._sniff: bytearray | None = bytearray()
        self._stream: ByteRewriteStream | None = None
        self._check = False  # whether each piece's round trip is checked
        self._decoder: Any = None  # decodes the text as the stream does
        self._pending = b""  # bytes of a character cut between pieces
        self._held = ""  # the text the stream holds
        self._codec = ""
        self.gave_up = False  # the text passes through from some point on
        self.why = ""  # why: "charset", "roundtrip", "held", "no-stream", "error"

    @property
    def held(self) -> int:
        """Bytes (characters, once in the rewriter) fed and not given out yet."""
        if self._sniff is not None:
            return len(self._sniff)
        return self._stream.held if self._stream is not None else 0

    def _decide(self, data: bytes, final: bool) -> str | None:
        """The codec, ``""`` to pass through; ``None`` while undecided."""
        if len(data) < 3 and not final and (b"\xef\xbb\xbf".startswith(data) or len(data) < 2):
            return None
        label = _bom(data)
        if label is None and self._declared is not None:
            label = self._declared
        if label is None and not self._xml:
            try:
                label = _prescan(data[:_PRESCAN], final or len(data) >= _PRESCAN)
            except _More:
                return None
            if label is None:
                label = "utf-8"
        if label is None:  # XHTML: the XML declaration, else UTF-8
            head = data[:_PRESCAN]
            if (
                not final
                and len(head) < _PRESCAN
                and b"?>" not in head
                and head.startswith(b"<?xml"[: len(head)])
            ):
                return None
            match = _XML_DECL.match(head)
            label = match.group(1).decode("ascii") if match else "utf-8"
        codec = codec_of(label)
        if codec is None:
            _once(f"charset-{label[:20]}", "pages in charset %r passed through", label[:20])
            return ""
        return codec

    def feed(self, data: bytes, final: bool = False) -> bytes:
        if self._sniff is not None:
            self._sniff += data
            codec = self._decide(bytes(self._sniff), final)
            if codec is None:
                return b""
            data, self._sniff = bytes(self._sniff), None
            self._start(codec)
        if self._stream is None:
            return data
        # The text is decoded here too, as the stream decodes it, to check the
        # round trip and to keep the text the stream holds: giving up, that text
        # goes out as it came, not rewritten.
        pending = self._pending
        try:
            text = self._decoder.decode(data, final)
            if self._check:
                back = text.encode(self._codec, "surrogateescape")
                ok = (pending + data).startswith(back)
                self._pending = (pending + data)[len(back) :]
            else:
                ok = True
                self._pending = self._decoder.getstate()[0]
        except Exception:
            ok = False
        if not ok:
            _once(
                f"roundtrip-{self._codec}",
                "pages in %s passed through from a piece that does not decode and encode back",
                self._codec,
            )
            return self._abandon("roundtrip", pending) + data
        out = self._stream.close(data) if final else self._stream.feed(data)
        held = self._stream.held
        kept = self._held + text
        self._held = kept[max(0, len(kept) - held) :] if held else ""
        if held > self.max_buffer:
            _once("body-held", "pages passed through from where more than max_buffer was held")
            return out + self._abandon("held", self._pending)
        return out

    def _start(self, codec: str) -> None:
        if not codec:
            self.gave_up, self.why = True, "charset"
            return
        try:
            stream = self._make_stream(codec)
        except Exception:
            _once("make-stream", "pages passed through: making the rewriter failed", exc_info=True)
            self.gave_up, self.why = True, "error"
            return
        if stream is None:
            self.gave_up, self.why = True, "no-stream"
            return
        self._stream = stream
        self._codec = codec
        self._check = codec not in _ROUND_TRIP
        self._decoder = codecs.getincrementaldecoder(codec)(errors="surrogateescape")

    def _abandon(self, why: str, pending: bytes) -> bytes:
        """Stop rewriting: the text the stream holds, as it came (and the bytes
        of a character cut after it)."""
        self._stream = None
        self.gave_up, self.why = True, why
        held, self._held = self._held, ""
        return held.encode(self._codec, "surrogateescape") + pending

    def abandon(self) -> bytes:
        """Stop rewriting after a failure: what is held, as it came."""
        if self._stream is None:
            sniffed, self._sniff = self._sniff, None
            return bytes(sniffed or b"")
        return self._abandon("error", self._pending)

    def close(self, data: bytes = b"") -> bytes:
        """The last piece: the stream is given it as its last (and so closed)."""
        out = self.feed(data, final=True)
        self._stream = None
        return out


# -- the body ----------------------------------------------------------------------


class BodyRewriter:
    """One response body rewritten on its way out; see the module docstring.

    ``make_stream(codec)`` builds the page rewriter's byte stream for the body's
    charset (a Python codec name) or returns ``None`` (nothing to swap: the body
    passes through). ``content_type`` and ``content_encoding`` are the
    response's header values (``None`` when absent). ``max_buffer`` bounds what
    may be held back (bytes not yet given out) before the rest passes through.

    :meth:`feed` takes the next piece and returns the bytes to send now;
    :meth:`close` returns the rest. The concatenation of what they return is
    the body to send: the whole-page rewrite, in the body's charset and content
    codings, or where the module docstring says so the body untouched. Neither
    ever raises. For a body known whole, :meth:`rewrite_whole`.
    """

    def __init__(
        self,
        make_stream: MakeStream,
        *,
        content_type: str | None,
        content_encoding: str | None,
        max_buffer: int = 1_048_576,
    ) -> None:
        self._raw: list[bytes] | None = []  # the original bytes, until something goes out
        self._raw_size = 0
        self._emitted = False
        self._closed = False
        self._identity = True
        self._whole = False
        self._mode = "raw"  # "raw": pass through; "work": rewrite; "done": nothing more out
        self._max_buffer = max(0, int(max_buffer))
        self._decoders: list[_Decoder] = []
        self._encoders: list[_Encoder] = []
        self._broken = False  # ended early: what went out is not the whole body
        self._why = ""  # why the body passes through: "", "unchanged", "no-stream", a failure
        self._same: bytes | None = b""  # plain text in not matched yet by text out
        self._codings: list[str] = []
        self._text: _Text
        try:
            codings = _codings(content_encoding)
            if codings is None:
                self._why = "coding"
                return
            self._codings = codings
            self._identity = not codings
            self._decoders = [
                _BrotliDecoder() if c == "br" else _ZlibDecoder(gzip=c == "gzip")
                for c in reversed(codings)
            ]
            self._text = _Text(make_stream, content_type, self._max_buffer)
            self._mode = "work"
        except Exception:
            _once("body-init", "a body passed through: setting up failed", exc_info=True)
            self._mode = "raw"

    @property
    def changed(self) -> bool:
        """Whether what was given out so far differs from the decoded body, i.e. a
        number was swapped (or the body was ended early)."""
        return self._same is None or self._broken

    @property
    def held(self) -> int:
        """About how much of the decoded body is held back, not given out yet."""
        if self._mode != "work":
            return 0
        return self._text.held

    @property
    def passed_through(self) -> bool:
        """Whether the body is (so far) given out exactly as it came."""
        return self._mode == "raw"

    def feed(self, chunk: bytes) -> bytes:
        """Take the next piece of the body; return the bytes to send now (often
        ``b""``). Never raises."""
        try:
            if self._closed or self._mode == "done":
                return b""
            if not isinstance(chunk, bytes | bytearray | memoryview):
                _once("body-type", "a body piece that is not bytes dropped: %s", type(chunk))
                return b""
            if self._mode == "raw":
                return bytes(chunk)
            chunk = bytes(chunk)
            if self._raw is not None:
                self._raw.append(chunk)
                self._raw_size += len(chunk)
            return self._out(self._work(chunk, final=False))
        except Exception:
            return self._fail(chunk)

    def close(self, last: bytes = b"") -> bytes:
        """End the body, ``last`` being its final bytes (a body known whole is
        rewritten in one step); return what is left to send. Never raises."""
        chunk = b""
        try:
            if self._closed:
                return b""
            self._closed = True
            if not isinstance(last, bytes | bytearray | memoryview):
                _once("body-type", "a body piece that is not bytes dropped: %s", type(last))
                last = b""
            chunk = bytes(last)
            if self._mode == "raw":
                return chunk
            if self._mode != "work":
                return b""
            if chunk and self._raw is not None:
                self._raw.append(chunk)
                self._raw_size += len(chunk)
            return self._out(self._work(chunk, final=True))
        except Exception:
            return self._fail(chunk)

    def rewrite_whole(self, body: bytes) -> bytes | None:
        """The body to send for an application body known whole (a fresh
        :class:`BodyRewriter` only): the rewritten body, in the same charset and
        codings, when a number was swapped; ``body`` itself when it goes out as
        it came (no number swapped, nothing to swap, an unknown coding or
        charset, a corrupt body, more than ``max_buffer`` held: its bytes, its
        compression and its ``ETag`` stay valid); ``None`` after a failure inside
        this object (or misuse: after :meth:`feed`), when the application's
        response should go out exactly as it was. Never raises."""
        try:
            if self._closed or self._emitted or self._raw_size:
                return None
            self._whole = True
            # The body is in memory already: max_buffer bounds what its decoding
            # may add (a compressed body inflating without a safe cut).
            self._max_buffer = max(self._max_buffer, _WHOLE_RATIO * len(body))
            if self._mode == "work":
                self._text.max_buffer = self._max_buffer
            out = self.close(body)
            if self._mode == "raw":
                return None if self._why == "error" else body
            if self._broken:
                return body  # cut short by damage: the original, damage and all
            if not self.changed:
                return body
            return out
        except Exception:
            _once("body-whole", "a body passed through: its rewrite failed", exc_info=True)
            return None

    # -- the layers

    def _work(self, chunk: bytes, final: bool) -> bytes:
        out: list[bytes] = []
        last = b""
        try:
            pieces = self._decode(chunk, final)
            if self._whole and final:
                # A body known whole goes to the rewriter as its last piece, so it
                # is rewritten in one step.
                last = b"".join(pieces)
            elif final:
                # The body's last decoded piece (its decoder's final output
                # included) goes to the rewriter as its last piece: no cut is
                # looked for in it and nothing is held after it.
                for piece in pieces:
                    if last:
                        out.append(self._text_step(last, final=False))
                    last = piece
            else:
                for piece in pieces:
                    out.append(self._text_step(piece, final=False))
        except _DecodeError as e:
            if not self._emitted:
                _once("body-corrupt", "a body that does not decode passed through (%s)", e)
                return self._raw_passthrough("decode")
            _once("body-decode", "a compressed body ended early: it does not decode (%s)", e)
            self._broken = True
            final = True
            self._mode = "done"
        if self._text.gave_up and not self._emitted:
            return self._raw_passthrough(self._text.why)
        if final:
            out.append(self._text_step(last, final=True))
            if not self._emitted and (self._text.gave_up or not self.changed):
                # Nothing went out and nothing changed: the original bytes (and
                # their compression) are the body.
                return self._raw_passthrough(self._text.why or "unchanged")
        plain = b"".join(out)
        return self._encode(plain, final)

    def _decode(self, chunk: bytes, final: bool) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((chunk,)) if chunk else iter(())
        for decoder in self._decoders:
            pieces = self._through(decoder, pieces, final)
        return pieces

    @staticmethod
    def _through(decoder: _Decoder, pieces: Iterator[bytes], final: bool) -> Iterator[bytes]:
        for piece in pieces:
            yield from decoder.decode(piece)
        if final:
            yield from decoder.finish()

    def _text_step(self, plain: bytes, final: bool) -> bytes:
        out = self._text.close(plain) if final else self._text.feed(plain)
        if self._same is not None:
            same = self._same + plain
            if same.startswith(out):
                self._same = same[len(out) :]
            else:
                self._same = None
        return out

    def _encode(self, plain: bytes, final: bool) -> bytes:
        if not self._codings or not (plain or final):
            return plain
        data = plain
        for encoder in self._encoders_made():
            data = encoder.encode(data) if data else b""
            if final:
                data += encoder.finish()
            elif not self._whole:
                data += encoder.flush()
        return data

    def _encoders_made(self) -> list[_Encoder]:
        if not self._encoders and self._codings:
            made: list[_Encoder] = []
            for coding, decoder in zip(self._codings, reversed(self._decoders), strict=True):
                if coding == "br":
                    made.append(_BrotliEncoder())
                else:
                    assert isinstance(decoder, _ZlibDecoder)
                    made.append(_ZlibEncoder(decoder.wbits))
            self._encoders = made
        return self._encoders

    def _out(self, data: bytes) -> bytes:
        if self._mode == "raw":
            return data
        if data:
            self._emitted = True
            self._raw = None
        elif self._raw is not None and self._raw_size > self._max_buffer:
            _once("body-held", "pages passed through from where more than max_buffer was held")
            return self._raw_passthrough("held")
        return data

    def _raw_passthrough(self, why: str) -> bytes:
        self._why = why
        raw, self._raw = self._raw or [], None
        self._mode = "raw"
        return b"".join(raw)

    def _fail(self, chunk: bytes) -> bytes:
        _once("body-error", "a body rewrite failed", exc_info=True)
        try:
            if not self._emitted and self._raw is not None:
                return self._raw_passthrough("error")
            self._broken = True
            if self._identity:
                # What the text layer holds, as it came, then the rest as it comes.
                self._mode = "raw"
                try:
                    held = self._text.abandon()
                except Exception:
                    held = b""
                return held + bytes(chunk)
            # A compressed body: what the text layer holds, as it came, and the
            # stream ended cleanly (the rest cannot be spliced in).
            self._mode = "done"
            try:
                data = self._text.abandon()
            except Exception:
                data = b""
            for encoder in self._encoders_made():
                data = (encoder.encode(data) if data else b"") + encoder.finish()
            return data
        except Exception:
            self._mode = "done"
            return b""


def rewrite_whole(
    make_stream: MakeStream,
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    max_buffer: int = 1_048_576,
) -> bytes | None:
    """``BodyRewriter(...).rewrite_whole(body)``: the body to send for a body known
    whole; ``body`` itself when it goes out as it came, ``None`` after a failure
    (send the response exactly as it was). Never raises."""
    return BodyRewriter(
        make_stream,
        content_type=content_type,
        content_encoding=content_encoding,
        max_buffer=max_buffer,
    ).rewrite_whole(body)
