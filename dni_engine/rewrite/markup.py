"""Reading HTML the way a browser does: where a number is text, where a link target.

What counts is what the HTML5 parser makes of the page: a number is text when
it lands in a text node outside ``script``, ``style`` and ``data-dni-noswap``
elements, and a link target when it lies in the ``href`` of such an element
(the first ``href``: a browser drops repeated attributes) after ``tel:`` or
``callto:``. The page is scanned, never parsed into a document:

- The tokenizer's states are followed where text is decided: script data with
  its escaped and double-escaped states (``<script><!--<script></script>``
  does not end the script), RCDATA (``title``, ``textarea``: text, tags
  inside are text), RAWTEXT (``style``, ``xmp``, ``iframe``, ``noembed``,
  ``noframes``: raw, and text unless it is ``style``), PLAINTEXT, comments
  (``<!-->``, ``<!--->``, ``--!>``), bogus comments, CDATA sections (text in
  ``svg``/``math``, a bogus comment elsewhere). Tag and attribute names match
  ASCII case-insensitively only (``</ſcript>`` ends nothing).
- Most of a page is read by one possessive regular expression that skips text,
  comments, end tags, whole raw-text elements and ordinary start tags, up to
  the next candidate number only. Where the tree-construction rules matter
  (``data-dni-noswap`` elements, whose extent follows implied end tags;
  ``svg``/``math``; ``select``; ``frameset``; ``plaintext``) the tokens are fed
  to :class:`~dni_engine.rewrite.tree.Tree` until the page is back in plain
  body content; when that needs what the fast scan passed over, the page is
  read again from its start with a full tree, once.

Everything is linear in the length of the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable

from dni_engine.rewrite.inline import pieces
from dni_engine.rewrite.tree import DATA, PLAINTEXT, RAWTEXT, RCDATA, SCRIPT, SVG, Resync, Tree

__all__ = ["Placer", "placed"]

#: :func:`placed`'s contract: the spans of a text that may be swapped, each with
#: whether it lies in a link target (the streaming rewriter has its own reader).
Placer = Callable[[str, Iterable[tuple[int, int]]], list[tuple[int, int, bool]]]

_A = re.ASCII

_WS = "\t\n\f\r "
_ATTR_VALUE = r"""(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >"'][^\t\n\f\r >]*+)"""
_ATTR = r"[^\t\n\f\r />][^\t\n\f\r />=]*+(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+" + _ATTR_VALUE + ")?"
_NOSWAP = "data-dni-noswap"
_NOSWAP_NAME = r"(?i:data-dni-noswap)(?=[\t\n\f\r />=]|\Z)"
_ATTRS = r"(?:[\t\n\f\r /]++|" + _ATTR + r")*+"
_ATTRS_SWAPPABLE = r"(?:[\t\n\f\r /]++|(?!" + _NOSWAP_NAME + ")" + _ATTR + r")*+"
_TAG_NAME = r"[A-Za-z][^\t\n\f\r />]*+"
_END = r"(?=[\t\n\f\r />])"  # what may follow an end tag's name for it to end raw text

_RAWTEXT = ("style", "xmp", "iframe", "noembed", "noframes")
_RCDATA = ("title", "textarea")
# Start tags the fast scan leaves to the tree, or reads as raw text itself.
_SPECIAL = ("script", *_RAWTEXT, *_RCDATA, "plaintext", "svg", "math", "select", "frameset")
# Start tags whose element a browser may drop or merge, depending on the
# insertion mode: their link targets need the tree's word.
_MODE_DEPENDENT = frozenset(
    [
        "caption",
        "col",
        "colgroup",
        "frame",
        "head",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "html",
        "body",
        "form",
    ]
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ci(name: str) -> str:
    return f"(?i:{name})"


def _script_content(name: str = "script") -> str:
    """Script data up to its end tag, through the escaped and double-escaped states."""
    end = f"/{_ci(name)}{_END}"  # after a '<': the end tag's name
    close = f"<{end}"
    start = f"<{_ci(name)}[\t\n\f\r />]"
    double = f"(?:[^<-]++|-(?!->)|<(?!{end}))*+"
    escaped = f"(?:[^<-]++|-(?!->)|<(?!/?{_ci(name)}{_END})|{start}{double}{close}[\t\n\f\r />])*+"
    return f"(?:[^<]++|<(?!!--|{end})|<!(?=--){escaped}(?:-->|{start}{double}-->)?)*+"


def _raw_content(name: str) -> str:
    return f"[^<]*+(?:<(?!/{_ci(name)}{_END})[^<]*+)*+"


def _whole(name: str, content: str) -> str:
    """A whole raw-text element without data-dni-noswap, its end tag included."""
    return f"<{_ci(name)}(?=[\t\n\f\r />]){_ATTRS_SWAPPABLE}>{content}</{_ci(name)}{_END}{_ATTRS}>"


# Inline svg icons and MathML are read by the fast scan too, when they hold only
# elements of their own vocabulary (no name an HTML element could bear, so no end
# tag can close an HTML element around them), comments and text: no CDATA
# section, script, style, foreignObject, nested svg or math, and title or desc
# with text only.
_FOREIGN_NAMES = [
    "g",
    "path",
    "circle",
    "rect",
    "line",
    "polyline",
    "polygon",
    "ellipse",
    "defs",
    "use",
    "symbol",
    "lineargradient",
    "radialgradient",
    "stop",
    "clippath",
    "mask",
    "pattern",
    "text",
    "tspan",
    "textpath",
    "filter",
    "marker",
    "switch",
    "metadata",
    "animate",
    "animatetransform",
    "animatemotion",
    "set",
    "mpath",
    "view",
    "feblend",
    "fecolormatrix",
    "fecomponenttransfer",
    "fecomposite",
    "feconvolvematrix",
    "fediffuselighting",
    "fedisplacementmap",
    "fedistantlight",
    "fedropshadow",
    "feflood",
    "fefunca",
    "fefuncb",
    "fefuncg",
    "fefuncr",
    "fegaussianblur",
    "feimage",
    "femerge",
    "femergenode",
    "femorphology",
    "feoffset",
    "fepointlight",
    "fespecularlighting",
    "fespotlight",
    "fetile",
    "feturbulence",
    "mi",
    "mo",
    "mn",
    "ms",
    "mtext",
    "mrow",
    "msup",
    "msub",
    "msubsup",
    "mfrac",
    "msqrt",
    "mroot",
    "mstyle",
    "mspace",
    "mtable",
    "mtr",
    "mtd",
    "mlabeledtr",
    "semantics",
    "annotation",
    "munder",
    "mover",
    "munderover",
    "mpadded",
    "mphantom",
    "menclose",
    "mfenced",
    "merror",
    "mmultiscripts",
    "mprescripts",
    "none",
    "maction",
    "mglyph",
    "malignmark",
]


def _trie(words: list[str]) -> str:
    """An alternation of ``words`` factored by common prefixes, so the regex engine
    compares each character once (its alternations are tried one by one)."""
    heads: dict[str, list[str]] = {}
    for word in words:
        heads.setdefault(word[:1], []).append(word[1:])
    options = []
    for head, tails in sorted(heads.items()):
        if not head:
            continue
        rest = _trie(tails) if any(tails) else ""
        optional = "" in tails and any(tails)
        options.append(
            re.escape(head) + (f"(?:{rest})?" if optional else f"(?:{rest})" if rest else "")
        )
    return "|".join(options)


_FOREIGN_NAME = "(?i:" + _trie(_FOREIGN_NAMES) + r")(?=[\t\n\f\r />])"
_FOREIGN_CONTENT = (
    r"(?:[^<]++"
    r"|<(?![A-Za-z/!?])"
    r"|<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
    r"|<\?[^>]*+>"
    r"|</" + _FOREIGN_NAME + _ATTRS + ">"
    r"|<" + _FOREIGN_NAME + _ATTRS_SWAPPABLE + ">"
    r"|<(?i:title|desc)(?=[\t\n\f\r />])" + _ATTRS_SWAPPABLE + r">[^<]*+"
    r"</(?i:title|desc)(?=[\t\n\f\r />])" + _ATTRS + ">"
    r")*+"
)


def _whole_foreign(name: str) -> str:
    return (
        f"<{_ci(name)}(?=[\t\n\f\r />]){_ATTRS_SWAPPABLE}(?<!/)>{_FOREIGN_CONTENT}"
        f"</{_ci(name)}{_END}{_ATTRS}>"
    )


# A select of options (archive menus hold hundreds) is read by the fast scan
# too: inside it only option and optgroup tags, text and comments.
_OPTION = r"(?i:option|optgroup)(?=[\t\n\f\r />])"
_WHOLE_SELECT = (
    r"<(?i:select)(?=[\t\n\f\r />])" + _ATTRS_SWAPPABLE + ">"
    r"(?:[^<]++"
    r"|<(?![A-Za-z/!?])"
    r"|<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
    r"|</" + _OPTION + _ATTRS + ">"
    r"|<" + _OPTION + _ATTRS_SWAPPABLE + ">"
    r")*+</(?i:select)" + _END + _ATTRS + ">"
)

# Inside a select the tree reads (one holds a candidate): a run of options, each
# followed by another. An <option> closes the option before it, so the tree's
# state after the run is the one it has before it, and the run can be passed
# over as a whole (archive menus hold hundreds of options).
_OPTIONS = re.compile(
    r"(?:<(?i:option)(?=[\t\n\f\r />])" + _ATTRS_SWAPPABLE + ">"
    r"(?:[^<]++|<(?![A-Za-z/!?])|<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
    r"|</(?i:option)" + _END + _ATTRS + ">)*+"
    r"(?=<(?i:option)[\t\n\f\r />]))*+",
    _A,
)
_SELECT_MODES = frozenset(["in select", "in select in table"])


def _svg_elements() -> str:
    """Runs of svg elements the tree reads (inside an svg holding a candidate) that
    leave its state as it was: self-closing elements and, three levels deep,
    elements closed by their own end tag, of svg's own vocabulary, with quoted
    attribute values only (no ``data-dni-noswap``), and white space between them.
    Other text, comments and anything else stop the run; the tree reads those."""
    names = "(?i:" + _trie(_FOREIGN_NAMES[: _FOREIGN_NAMES.index("mi")]) + ")"
    attr = (
        r"(?!" + _NOSWAP_NAME + r")[^\t\n\f\r />=\"'<][^\t\n\f\r />=]*+"
        r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"[^\"]*+\"|'[^']*+'))?"
    )
    attrs = r"(?:[\t\n\f\r ]++" + attr + r")*+[\t\n\f\r ]*+"
    level = r"[\t\n\f\r ]++"
    for depth in (1, 2, 3):
        level = (
            f"[\\t\\n\\f\\r ]++|<(?P<e{depth}>{names})(?=[\\t\\n\\f\\r />]){attrs}"
            f"(?:/>|>(?:{level})*+</(?i:(?P=e{depth})){_END}{_ATTRS}>)"
        )
    return f"(?:{level})*+"


_SVG_ELEMENTS = re.compile(_svg_elements(), _A)

_SCRIPT_CONTENT = re.compile(_script_content(), _A)
_RAW_CONTENT = {name: re.compile(_raw_content(name), _A) for name in (*_RAWTEXT, *_RCDATA)}

# Everything the fast scan reads without the tree: text, comments, doctypes and
# bogus comments, end tags, whole raw-text elements, and start tags other than
# the special ones and those with data-dni-noswap. Matched from a position in
# plain body content with the end of the text set to a candidate's start, it
# stops exactly there (the candidate is in text) or at the ``<`` of whatever
# encloses it or needs a closer look. Possessive throughout: it never
# backtracks.
_PLAIN = re.compile(
    r"(?:[^<]++"
    r"|<(?![A-Za-z/!?])"
    r"|<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
    r"|<!(?!--)[^>]*+>"
    r"|<\?[^>]*+>"
    r"|</(?![A-Za-z])[^>]*+>"
    r"|</" + _TAG_NAME + _ATTRS + ">"
    "|"
    + _whole("script", _script_content())
    + "".join("|" + _whole(name, _raw_content(name)) for name in (*_RAWTEXT, *_RCDATA))
    + "|"
    + _whole_foreign("svg")
    + "|"
    + _whole_foreign("math")
    + "|"
    + _WHOLE_SELECT
    + r"|<(?!(?i:"
    + "|".join(_SPECIAL)
    + r")(?=[\t\n\f\r />]|\Z))"
    + _TAG_NAME
    + _ATTRS_SWAPPABLE
    + r">)*+",
    _A,
)

_TAG = re.compile(r"<(/?)(" + _TAG_NAME + ")(" + _ATTRS + ")(>?)", _A)
_ATTR_PARTS = re.compile(
    r"([^\t\n\f\r />][^\t\n\f\r />=]*+)(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(" + _ATTR_VALUE + "))?", _A
)
_COMMENT_END = re.compile(r"--!?>")


def _written_char(char: str, named: tuple[str, ...] = ()) -> str:
    """A regex for one character of an attribute value as a page may write it: the
    character (either ASCII case for a letter) or a character reference to it
    (numeric, with or without its ``;``, or named), which the browser decodes."""
    chars = {char, char.upper()} if char.isalpha() else {char}
    refs = []
    for one in sorted(chars):
        refs.append(f"#0*{ord(one)}(?:;|(?![0-9]))")
        refs.append(f"#[xX]0*(?i:{ord(one):x})(?:;|(?![0-9A-Fa-f]))")
    refs.extend(f"{name};" for name in named)
    return f"(?:[{''.join(sorted(chars))}]|&(?:{'|'.join(refs)}))"


# A link target's scheme, as the browser reads the decoded attribute value: space
# before it, ASCII case-insensitive, each character possibly a character
# reference (href="&#116;el:...", "tel&#58;...", "tel&colon;...").
_SPACE = _written_char(" ", ("Tab", "NewLine")).replace("[ ]", r"[\t\n\f\r ]")
_LINK_SCHEME = re.compile(
    f"(?:{_SPACE}|&#0*(?:9|1[023])(?:;|(?![0-9]))|&#[xX]0*[9aAcCdD](?:;|(?![0-9A-Fa-f])))*+"
    + "(?:"
    + "|".join(
        "".join(_written_char(c, ("colon",) if c == ":" else ()) for c in scheme)
        for scheme in ("tel:", "callto:")
    )
    + ")",
    _A,
)
_BODY_NOSWAP = re.compile(r"<(?i:body|html)[\t\n\f\r /][^>]*?(?i:data-dni-noswap)", _A)
_END_TAG_OF = {
    name: re.compile(f"</{_ci(name)}{_END}", _A) for name in (*_RAWTEXT, *_RCDATA, "script")
}

# Kinds of token, as far as a number inside one goes.
_HIDDEN, _TEXT, _TAG_KIND = range(3)


class _Token:
    """What the reader read last: ``text[start:end]``, and how a number inside it counts."""

    __slots__ = ("end", "kind", "link", "start")

    def __init__(self) -> None:
        self.start = 0
        self.end = 0
        self.kind = _HIDDEN
        self.link: tuple[int, int] | None = None

    def set(self, start: int, end: int, kind: int, link: tuple[int, int] | None = None) -> None:
        self.start = start
        self.end = end
        self.kind = kind
        self.link = link


class _Reader:
    """Reads a page token by token, as far as the candidate numbers ask."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self.pos = 0  # where the next token starts
        self.tree: Tree | None = None  # None: plain body content, read by the fast scan
        self.full = False  # whether the tree has read the page from its start
        self.hide_all = False
        # Raw text the fast scan is inside: (state, element name, hidden); kept when
        # the content runs to the end of the text.
        self.raw: tuple[int, str, bool] | None = None
        self.token = _Token()
        # Where the token the fast scan read to the end of the text starts, -1 when
        # none did: a place in plain content, or in raw content (``raw`` then kept).
        # A reader of a page arriving in pieces steps back there for the next piece.
        self.cut = -1

    def where(self, start: int, end: int) -> int:
        """How the span ``[start, end)`` counts: 0 hidden, 1 text, 2 link target."""
        token = self.token
        while token.end <= start:
            if self.pos >= self.size:
                return 0
            self._step(start)
        if token.kind == _TEXT:
            return 1
        if token.kind == _TAG_KIND and token.link is not None:
            a, b = token.link
            if a <= start and end <= b:
                return 2
        return 0

    def split_in_text(self, start: int, end: int) -> bool:
        """Whether every piece of a span split by tags is text and each tag between
        them is a tag to the tokenizer (the text before it ends at its ``<``)."""
        for a, b in pieces(self.text, start, end):
            if self.where(a, b) != 1:
                return False
            if b < end and self.token.end != b:
                return False
        return True

    # ---- reading ---------------------------------------------------------------

    def _step(self, target: int) -> None:
        """Read the next token (in plain content, everything up to ``target`` at once)."""
        if self.tree is None:
            if self.raw is not None:
                self._raw_content_fast()
                return
            plain = _PLAIN.match(self.text, self.pos, target)
            stop = plain.end() if plain else self.pos
            if stop >= target:  # the candidate is in text
                lt = self.text.find("<", target)
                end = lt if lt >= 0 else self.size
                self.token.set(target, end, _TEXT)
                self.pos = end
                if lt < 0:
                    self.cut = target
                return
            self.pos = stop
            self._token_fast()
            return
        tree = self.tree
        if tree.mode in _SELECT_MODES and tree.state == DATA:
            options = _OPTIONS.match(self.text, self.pos, target)
            if options is not None and options.end() > self.pos:
                self.token.set(self.pos, options.end(), _HIDDEN)
                self.pos = options.end()
                return
        elif tree.stack and tree.stack[-1].ns == SVG and not tree.stack[-1].point:
            elements = _SVG_ELEMENTS.match(self.text, self.pos, target)
            if elements is not None and elements.end() > self.pos:
                self.token.set(self.pos, elements.end(), _HIDDEN)
                self.pos = elements.end()
                return
        try:
            self._token_tree(self.tree)
        except Resync:
            self._resync()
            assert self.tree is not None
            self._token_tree(self.tree)
        if self.tree is not None and self.tree.idle():
            self.tree = None

    def _token_fast(self) -> None:
        """One token at ``self.pos`` in plain body content, without the tree."""
        text = self.text
        at = self.pos
        end, kind, tag = _token_at(text, at, False)
        if tag is None or tag.group(1):  # text, a comment-like token or an end tag
            self.token.set(at, end, kind)
            self.pos = end
            if end >= self.size:
                self.cut = at
            return
        if not tag.group(4):  # the tag never closes: the rest of the page is inside it
            self.token.set(at, self.size, _HIDDEN)
            self.pos = self.size
            self.cut = at
            return
        name = tag.group(2).translate(_ASCII_LOWER)
        attrs_region = (tag.start(3), tag.end(3))
        noswap = _has_noswap(text, *attrs_region)
        if (
            noswap
            or name in ("svg", "math", "select", "frameset")
            or (name in _MODE_DEPENDENT and _link_target(text, *attrs_region) is not None)
        ):
            self.tree = Tree(local=True)
            try:
                self._token_tree(self.tree)
            except Resync:
                self._resync()
                assert self.tree is not None
                self._token_tree(self.tree)
            if self.tree is not None and self.tree.idle():
                self.tree = None
            return
        self.token.set(at, end, _TAG_KIND, _link_target(text, *attrs_region))
        self.pos = end
        if name == "script":
            self.raw = (SCRIPT, name, True)
        elif name == "style":
            self.raw = (RAWTEXT, name, True)
        elif name in _RAW_CONTENT:
            self.raw = (RCDATA if name in _RCDATA else RAWTEXT, name, False)
        elif name == "plaintext":
            self.raw = (PLAINTEXT, name, False)

    def _raw_content_fast(self) -> None:
        assert self.raw is not None
        state, name, hidden = self.raw
        at = self.pos
        close = _raw_end(self.text, at, state, name)
        if close > at:
            self.token.set(at, close, _HIDDEN if hidden else _TEXT)
            self.pos = close
            if close < self.size:
                return
        if close >= self.size:  # the content goes on to the end of the text
            self.cut = at
            self.pos = self.size
            return
        self.raw = None
        tag = _TAG.match(self.text, close)
        assert tag is not None
        end = tag.end() if tag.group(4) else self.size
        self.token.set(close, end, _HIDDEN)
        self.pos = end

    def _token_tree(self, tree: Tree) -> None:
        """One token at ``self.pos``, fed to ``tree``."""
        text = self.text
        at = self.pos
        tree.position = at
        if tree.state != DATA:
            close = _raw_end(text, at, tree.state, tree.raw_name)
            if close > at:
                hidden = tree.characters(text[at:close] if tree.state == PLAINTEXT else "x")
                self.token.set(at, close, _HIDDEN if hidden else _TEXT)
                self.pos = close
                return
            if close >= self.size:
                self.token.set(at, self.size, _HIDDEN)
                self.pos = self.size
                return
            tag = _TAG.match(text, close)
            assert tag is not None
            end = tag.end() if tag.group(4) else self.size
            if tag.group(4):
                tree.end_tag(tree.raw_name)
            self.token.set(close, end, _HIDDEN)
            self.pos = end
            return
        end, kind, tag = _token_at(text, at, tree.foreign())
        if tag is None:
            if kind == _TEXT:  # text, or a CDATA section's content
                cdata = text.startswith("<![CDATA[", at)
                content = (
                    text[at + 9 : end - 3 if text.endswith("]]>", 0, end) else end]
                    if cdata
                    else text[at:end]
                )
                hidden = tree.characters(content)
                self.token.set(at, end, _HIDDEN if hidden else _TEXT)
            else:
                if text[at : at + 9].translate(_ASCII_LOWER) == "<!doctype":
                    tree.doctype(*_doctype(text, at, end))
                self.token.set(at, end, _HIDDEN)
            self.pos = end
            return
        if not tag.group(4):
            self.token.set(at, self.size, _HIDDEN)
            self.pos = self.size
            return
        name = tag.group(2).translate(_ASCII_LOWER)
        if tag.group(1):
            tree.end_tag(name)
            self.token.set(at, end, _HIDDEN)
            self.pos = end
            return
        attrs = _attributes(text, tag.start(3), tag.end(3))
        self_closing = _self_closing(text, tag)
        element = tree.start_tag(name, attrs, self_closing)
        if tree.hide_from is not None:
            self.hide_all = True
        link = None
        if element is not None and not element.hidden:
            link = _link_target(text, tag.start(3), tag.end(3))
        self.token.set(at, end, _TAG_KIND, link)
        self.pos = end

    def _resync(self) -> None:
        """Read the page again from its start with a full tree, up to the token at ``pos``."""
        until = self.pos
        tree = Tree(local=False)
        self.tree = tree
        self.full = True
        self.raw = None
        self.pos = 0
        token = self.token
        saved = (token.start, token.end, token.kind, token.link)
        while self.pos < until:
            self._token_tree(tree)
        self.pos = until
        token.set(*saved)


def _token_at(text: str, at: int, foreign: bool) -> tuple[int, int, re.Match[str] | None]:
    """The token at ``at`` in the data state: ``(end, kind, tag match or None)``."""
    size = len(text)
    if text[at] != "<":
        lt = text.find("<", at)
        return (lt if lt >= 0 else size), _TEXT, None
    nxt = text[at + 1 : at + 2]
    if (nxt.isascii() and nxt.isalpha()) or (
        nxt == "/" and text[at + 2 : at + 3].isascii() and text[at + 2 : at + 3].isalpha()
    ):
        tag = _TAG.match(text, at)
        assert tag is not None
        return (tag.end() if tag.group(4) else size), _TAG_KIND, tag
    if nxt == "!":
        if text.startswith("<!--", at):
            if text.startswith(">", at + 4):
                return at + 5, _HIDDEN, None
            if text.startswith("->", at + 4):
                return at + 6, _HIDDEN, None
            close = _COMMENT_END.search(text, at + 4)
            return (close.end() if close else size), _HIDDEN, None
        if foreign and text.startswith("<![CDATA[", at):
            close_at = text.find("]]>", at + 9)
            return (close_at + 3 if close_at >= 0 else size), _TEXT, None
    if nxt in ("!", "?") or (nxt == "/" and at + 2 < size):
        gt = text.find(">", at + 2)
        return (gt + 1 if gt >= 0 else size), _HIDDEN, None
    # A '<' that starts nothing is text, up to the next '<'.
    lt = text.find("<", at + 1)
    return (lt if lt >= 0 else size), _TEXT, None


def _raw_end(text: str, at: int, state: int, name: str) -> int:
    """Where raw content starting at ``at`` ends: at its end tag's ``<``, or the end of the text."""
    if state == PLAINTEXT:
        return len(text)
    if state == SCRIPT and name == "script":
        content = _SCRIPT_CONTENT.match(text, at)
        end = content.end() if content else at
        close = _END_TAG_OF["script"].match(text, end)
        return end if close is not None else len(text)
    pattern = _END_TAG_OF.get(name) or re.compile(f"</{_ci(re.escape(name))}{_END}", _A)
    close = pattern.search(text, at)
    return close.start() if close else len(text)


def _has_noswap(text: str, start: int, end: int) -> bool:
    if end - start < len(_NOSWAP):
        return False
    return any(
        attr.group(1).translate(_ASCII_LOWER) == _NOSWAP
        for attr in _ATTR_PARTS.finditer(text, start, end)
    )


def _attributes(text: str, start: int, end: int) -> dict[str, str]:
    """A start tag's attributes, names lower-cased, the first of a repeated name kept."""
    attrs: dict[str, str] = {}
    for attr in _ATTR_PARTS.finditer(text, start, end):
        key = attr.group(1).translate(_ASCII_LOWER)
        if key in attrs:
            continue
        value = attr.group(2) or ""
        if value[:1] in ("'", '"'):
            value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
        if "&" in value:
            value = html.unescape(value)
        attrs[key] = value
    return attrs


def _self_closing(text: str, tag: re.Match[str]) -> bool:
    """Whether a start tag ends in ``/>`` with the ``/`` not the end of an unquoted value."""
    end = tag.end()
    if text[end - 2 : end] != "/>" or end - 2 < tag.start(3):
        return False
    last = None
    for attr in _ATTR_PARTS.finditer(text, tag.start(3), tag.end(3)):
        last = attr
    value = last.group(2) if last is not None and last.end() == end - 1 else None
    return value is None or value[:1] in ("'", '"')


def _link_target(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where a number may be swapped in a start tag: its first ``href``, after ``tel:``."""
    for attr in _ATTR_PARTS.finditer(text, start, end):
        if attr.group(1).translate(_ASCII_LOWER) != "href":
            continue
        value_start, value_end = attr.span(2)
        if value_start < 0:
            return None
        body = value_start + 1 if text[value_start] in "\"'" else value_start
        scheme = _LINK_SCHEME.match(text, body, value_end)
        return (scheme.end(), value_end) if scheme is not None else None
    return None


def _doctype(text: str, at: int, end: int) -> tuple[str, str | None, str | None]:
    """A DOCTYPE's name, public and system identifiers, as far as quirks mode needs them."""
    body = text[at + 9 : end - 1 if text[end - 1 : end] == ">" else end]
    parts = body.strip(_WS)
    name = parts.split(None, 1)[0].translate(_ASCII_LOWER) if parts else ""
    public = system = None
    lower = parts.translate(_ASCII_LOWER)
    where = lower.find("public")
    if where >= 0:
        rest = parts[where + 6 :].lstrip(_WS)
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            close = rest.find(quote, 1)
            public = rest[1:close] if close >= 0 else rest[1:]
            after = rest[close + 1 :].lstrip(_WS) if close >= 0 else ""
            if after[:1] in ("'", '"'):
                system = after[1:]
    elif "system" in lower:
        system = ""
    return name, public, system


def placed(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """The spans (sorted, not overlapping) that may be swapped in HTML ``text``.

    Each comes back as ``(start, end, in_link)``: in text, or (``in_link``) in
    a ``tel:``/``callto:`` link target. Spans anywhere else are dropped. A span
    holding tags (a number split by inline markup, see :mod:`.inline`) is kept,
    as text, only when each of its pieces is text and each tag in it is read as
    a tag. The
    page is read only as far as the last span, in time linear in that length.
    """
    reader = _Reader(text)
    kept: list[tuple[int, int, bool]] = []
    for start, end in spans:
        if text.find("<", start, end) >= 0:
            if reader.split_in_text(start, end):
                kept.append((start, end, False))
            continue
        where = reader.where(start, end)
        if where:
            kept.append((start, end, where == 2))
    if kept and not reader.hide_all and _BODY_NOSWAP.search(text, reader.pos):
        # data-dni-noswap given to the body (or html) element further on hides it all.
        while reader.pos < reader.size and not reader.hide_all:
            reader.where(reader.size, reader.size)
    if reader.hide_all:
        return []
    return kept
