"""The HTML5 tree-construction rules, as far as they decide where a page's text ends up.

No document is built: the stack of open elements, the list of active formatting
elements, the insertion mode and the frameset-ok flag are kept, each element
knowing only its name, namespace and whether it is *hidden*: a ``script`` or
``style`` element (of any namespace), an element carrying ``data-dni-noswap``,
or a descendant of one. That is what tells whether a run of text becomes a
visible text node (``False`` from :meth:`Tree.characters`) and which tokenizer
state a start tag switches to.

The rules are those of html5lib 1.1 (the reference parser the rewriter is held
to), with the ruby elements' implied end tags of the current HTML standard
(``rb``, ``rtc`` as well as ``rp``, ``rt``), as browsers close them.
``isindex`` is an ordinary element, as in browsers (html5lib 1.1 still expands
it). Scripting counts as disabled (html5lib's default): ``noscript`` content is
markup, as a visitor without JavaScript sees it.

A *local* tree starts in the middle of a page, over elements it does not know
(the page read so far by the fast scan): its stack begins with a placeholder
for them. Whenever a rule would look past the placeholder (an end tag for an
element it does not hold, a scope check it cannot settle, a tag whose handling
depends on the insertion mode outside), it raises :class:`Resync`, and the
caller reads the page again from its start with a full tree.
"""

from __future__ import annotations

import re

__all__ = [
    "DATA",
    "PLAINTEXT",
    "RAWTEXT",
    "RCDATA",
    "SCRIPT",
    "Element",
    "Resync",
    "Tree",
]

# Tokenizer states a start tag can switch to.
DATA, RCDATA, RAWTEXT, SCRIPT, PLAINTEXT = range(5)
HTML, SVG, MATHML = range(3)

_NOSWAP = "data-dni-noswap"
_SPACE = frozenset("\t\n\f\r ")
_NONSPACE = re.compile("[^\t\n\f\r ]")
_REAL = re.compile("[^\t\n\f\r \x00]")
_OUTER = "#outer"  # the placeholder for what a local tree does not know

_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_FORMATTING = frozenset(
    [
        "a",
        "b",
        "big",
        "code",
        "em",
        "font",
        "i",
        "nobr",
        "s",
        "small",
        "strike",
        "strong",
        "tt",
        "u",
    ]
)
_SPECIAL_HTML = frozenset(
    [
        "address",
        "applet",
        "area",
        "article",
        "aside",
        "base",
        "basefont",
        "bgsound",
        "blockquote",
        "body",
        "br",
        "button",
        "caption",
        "center",
        "col",
        "colgroup",
        "command",
        "dd",
        "details",
        "dir",
        "div",
        "dl",
        "dt",
        "embed",
        "fieldset",
        "figure",
        "footer",
        "form",
        "frame",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "iframe",
        "image",
        "img",
        "input",
        "isindex",
        "li",
        "link",
        "listing",
        "marquee",
        "menu",
        "meta",
        "nav",
        "noembed",
        "noframes",
        "noscript",
        "object",
        "ol",
        "p",
        "param",
        "plaintext",
        "pre",
        "script",
        "section",
        "select",
        "style",
        "table",
        "tbody",
        "td",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
        "wbr",
        "xmp",
    ]
)
_SCOPE_HTML = frozenset(["applet", "caption", "html", "marquee", "object", "table", "td", "th"])
_SCOPE_MATHML = frozenset(["mi", "mo", "mn", "ms", "mtext", "annotation-xml"])
_SCOPE_SVG = frozenset(["foreignObject", "desc", "title"])
_MATHML_TEXT_POINTS = frozenset(["mi", "mo", "mn", "ms", "mtext"])
_TABLE_INSERT = frozenset(["table", "tbody", "tfoot", "thead", "tr"])
_IMPLIED_END = frozenset(["dd", "dt", "li", "option", "optgroup", "p", "rb", "rp", "rt", "rtc"])
# Start tags that close an open p element (the block-level ones).
_CLOSE_P_START = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "header",
        "hgroup",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "section",
        "summary",
        "ul",
    ]
)
# Start tags that close an open p element in button scope as they are inserted:
# once one of them is on the stack, no p below it is in button scope.
_CLOSES_P = (
    _CLOSE_P_START
    | _HEADINGS
    | frozenset(["pre", "listing", "form", "li", "dd", "dt", "plaintext", "xmp"])
)
_BLOCK_END = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "button",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "header",
        "hgroup",
        "listing",
        "main",
        "menu",
        "nav",
        "ol",
        "pre",
        "section",
        "summary",
        "ul",
    ]
)
_BREAKOUT = frozenset(
    [
        "b",
        "big",
        "blockquote",
        "body",
        "br",
        "center",
        "code",
        "dd",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "hr",
        "i",
        "img",
        "li",
        "listing",
        "menu",
        "meta",
        "nobr",
        "ol",
        "p",
        "pre",
        "ruby",
        "s",
        "small",
        "span",
        "strong",
        "strike",
        "sub",
        "sup",
        "table",
        "tt",
        "u",
        "ul",
        "var",
    ]
)
_SVG_NAMES = {
    name.lower(): name
    for name in [
        "altGlyph",
        "altGlyphDef",
        "altGlyphItem",
        "animateColor",
        "animateMotion",
        "animateTransform",
        "clipPath",
        "feBlend",
        "feColorMatrix",
        "feComponentTransfer",
        "feComposite",
        "feConvolveMatrix",
        "feDiffuseLighting",
        "feDisplacementMap",
        "feDistantLight",
        "feFlood",
        "feFuncA",
        "feFuncB",
        "feFuncG",
        "feFuncR",
        "feGaussianBlur",
        "feImage",
        "feMerge",
        "feMergeNode",
        "feMorphology",
        "feOffset",
        "fePointLight",
        "feSpecularLighting",
        "feSpotLight",
        "feTile",
        "feTurbulence",
        "foreignObject",
        "glyphRef",
        "linearGradient",
        "radialGradient",
        "textPath",
    ]
}
_TABLE_PARTS = frozenset(
    ["caption", "col", "colgroup", "tbody", "td", "tfoot", "th", "thead", "tr"]
)
_TABLE_TAGS = _TABLE_PARTS | {"table"}
_SELECT_TABLE = frozenset(["caption", "table", "tbody", "tfoot", "thead", "tr", "td", "th"])
# Tags a local tree leaves to a full one: their handling depends on elements
# or state (the form, the body, quirks mode) the fast scan passed over, or, in
# the insertion mode outside (in body, or in a table), on which mode that is.
_LOCAL_START = frozenset(["html", "body", "head", "frameset", "form", "noscript"])
_LOCAL_END = frozenset(["html", "body", "head", "form"])


class Resync(Exception):
    """A local tree met a rule that needs the part of the page it has not read."""


class Element:
    """An open element: its name (as html5lib spells it), namespace and visibility."""

    __slots__ = ("attrs", "hidden", "name", "noswap", "ns", "p_scope", "parent_hidden", "point")

    def __init__(
        self,
        name: str,
        ns: int,
        attrs: dict[str, str],
        parent_hidden: bool,
    ) -> None:
        self.name = name
        self.ns = ns
        self.attrs = attrs
        self.noswap = _NOSWAP in attrs
        self.parent_hidden = parent_hidden
        self.hidden = parent_hidden or self.noswap or name in ("script", "style")
        # Whether a p element is in button scope while this is the current node:
        # 1 yes, 0 no, 2 not known (below it lies the part a local tree never saw).
        self.p_scope = 2
        if ns == SVG:
            self.point = name in _SCOPE_SVG  # an HTML integration point
        elif ns == MATHML and name == "annotation-xml":
            encoding = attrs.get("encoding", "").lower()
            self.point = encoding in ("text/html", "application/xhtml+xml")
        else:
            self.point = False

    @property
    def special(self) -> bool:
        if self.ns == HTML:
            return self.name in _SPECIAL_HTML or self.name == _OUTER
        return self.ns == SVG and self.name == "foreignObject"

    def scoping(self, extra: frozenset[str] = frozenset()) -> bool:
        if self.ns == HTML:
            return self.name in _SCOPE_HTML or self.name in extra
        if self.ns == MATHML:
            return self.name in _SCOPE_MATHML
        return self.name in _SCOPE_SVG

    def clone(self, parent_hidden: bool) -> Element:
        return Element(self.name, self.ns, self.attrs, parent_hidden)


_Entry = Element | None  # None: a marker in the list of active formatting elements


class Tree:
    """The tree-construction state of one page (see the module docstring)."""

    def __init__(self, *, local: bool) -> None:
        self.local = local
        self.stack: list[Element] = []
        self.formatting: list[_Entry] = []
        self.state = DATA
        self.raw_name = ""  # the element whose end tag ends RCDATA, RAWTEXT or script data
        self.frameset_ok = True
        self.quirks = True
        self.form: Element | None = None
        self.head: Element | None = None
        self.hide_from: int | None = None  # everything from here on lies in a hidden body
        self.position = 0  # where the token being processed starts
        self._from_table = False
        self._original = "in body"
        self._inserted: Element | None = None
        self._token_attrs: dict[str, str] = {}
        self._real = False
        if local:
            self._push(Element(_OUTER, HTML, {}, False))
            self.mode = "in body"
            self.quirks = False
        else:
            self.mode = "initial"

    # ---- what the reader asks ------------------------------------------------

    def foreign(self) -> bool:
        """Whether a CDATA section may start here (the current node is not HTML)."""
        return bool(self.stack) and self.stack[-1].ns != HTML

    def idle(self) -> bool:
        """Whether a local tree is back where it started: nothing open, nothing to revive."""
        return (
            self.local
            and len(self.stack) == 1
            and self.mode == "in body"
            and self.state == DATA
            and not any(entry is not None and entry.hidden for entry in self.formatting)
        )

    def characters(self, text: str) -> bool:
        """Process a run of character tokens; whether its non-space text is hidden."""
        nonspace = _NONSPACE.search(text) is not None
        # A NUL character is dropped (or replaced) on its own: it leaves frameset-ok alone.
        self._real = nonspace and _REAL.search(text) is not None
        if self._foreign_token(start=False):
            if self._real:
                self.frameset_ok = False
            return self._current_hidden()
        return self._chars(self.mode, nonspace)

    def comment(self) -> None:
        """A comment, bogus comment or CDATA section outside foreign content."""

    def doctype(self, name: str, public: str | None, system: str | None) -> None:
        """A DOCTYPE token: it decides quirks mode in the initial insertion mode."""
        if self.mode != "initial":
            return
        self.quirks = name != "html" or _quirky(public, system)
        self.mode = "before html"

    def start_tag(self, name: str, attrs: dict[str, str], self_closing: bool) -> Element | None:
        """Process a start tag; the element it inserted (``None`` if it was ignored)."""
        self.state = DATA
        self._inserted = None
        self._token_attrs = attrs
        token: _Start | None = _Start(name, attrs, self_closing)
        while token is not None:
            if self._foreign_token(start=True, name=token.name):
                token = self._foreign_start(token)
            else:
                if self.local:
                    self._local_check(token.name, start=True)
                token = self._start(self.mode, token)
        return self._inserted

    def end_tag(self, name: str) -> None:
        """Process an end tag."""
        self.state = DATA
        again: str | None = name
        while again is not None:
            if self.stack and self.stack[-1].ns != HTML:
                again = self._foreign_end(again)
            else:
                if self.local:
                    self._local_check(again, start=False)
                again = self._end(self.mode, again)

    def _local_check(self, name: str, *, start: bool) -> None:
        """Raise :class:`Resync` where a local tree cannot know what the tag does."""
        if name in (_LOCAL_START if start else _LOCAL_END):
            raise Resync(name)
        if self.mode == "in body" and name in _TABLE_TAGS:
            raise Resync(name)  # the mode outside may be a table's
        if self.mode == "in select" and name in _SELECT_TABLE:
            raise Resync(name)  # the select may stand in a table

    # ---- the stack -----------------------------------------------------------

    def _current_hidden(self) -> bool:
        return self.stack[-1].hidden if self.stack else False

    def _foreign_token(self, *, start: bool, name: str = "") -> bool:
        """Whether a start tag (or characters) is processed by the foreign-content rules."""
        if not self.stack:
            return False
        node = self.stack[-1]
        if node.ns == HTML or node.point:
            return False
        if node.ns == MATHML and node.name in _MATHML_TEXT_POINTS:
            return start and name in ("mglyph", "malignmark")
        return not (start and node.ns == MATHML and node.name == "annotation-xml" and name == "svg")

    def _parent_hidden(self) -> bool:
        """The hidden flag of where an element or text is inserted now."""
        if not self.stack:
            return False
        node = self.stack[-1]
        if self._from_table and node.ns == HTML and node.name in _TABLE_INSERT:
            return self._foster_hidden()
        return node.hidden

    def _foster_hidden(self) -> bool:
        for element in reversed(self.stack):
            if element.ns == HTML and element.name == "table":
                return element.parent_hidden
            if element.name == _OUTER:
                raise Resync("foster parent")
        return self.stack[0].hidden if self.stack else False

    def _insert(self, name: str, attrs: dict[str, str], ns: int = HTML) -> Element:
        element = Element(name, ns, attrs, self._parent_hidden())
        self._push(element)
        if attrs is self._token_attrs:
            self._inserted = element
        return element

    def _insert_void(self, name: str, attrs: dict[str, str]) -> Element:
        element = self._insert(name, attrs)
        self.stack.pop()
        return element

    def _push(self, element: Element) -> None:
        element.p_scope = _p_scope(element, self.stack[-1].p_scope if self.stack else 0)
        self.stack.append(element)

    def _remove(self, element: Element) -> None:
        at = self.stack.index(element)
        del self.stack[at]
        self._fix_from(at)

    def _fix_from(self, at: int) -> None:
        """Recompute the cached p-scope flags above a change in the middle of the stack."""
        below = self.stack[at - 1].p_scope if at > 0 else 0
        for element in self.stack[at:]:
            element.p_scope = below = _p_scope(element, below)

    def _named(self, name: str) -> bool:
        node = self.stack[-1]
        return node.ns == HTML and node.name == name

    def _in_scope(self, name: str, variant: str = "") -> bool:
        if name == "p" and variant == "button" and self.stack:  # the common question, cached
            known = self.stack[-1].p_scope
            if known != 2:
                return known == 1
            if len(self.stack) == 1:
                return False  # only what lies outside a local tree would close
            raise Resync("p in scope")
        for node in reversed(self.stack):
            if node.name == _OUTER:
                if len(self.stack) == 1:
                    # Nothing of the local tree's own is open: whatever the rule
                    # then closes lies outside it and changes nothing here.
                    return False
                raise Resync(f"{name} in scope")
            if node.ns == HTML and node.name == name:
                return True
            if variant == "table":
                if node.ns == HTML and node.name in ("html", "table"):
                    return False
            elif variant == "select":
                if not (node.ns == HTML and node.name in ("optgroup", "option")):
                    return False
            else:
                if variant == "button" and node.ns == HTML and node.name in _CLOSES_P:
                    return False  # it closed any p below it when it was inserted
                extra = (
                    frozenset(["button"])
                    if variant == "button"
                    else frozenset(["ol", "ul"])
                    if variant == "list"
                    else frozenset()
                )
                if node.scoping(extra):
                    return False
        return False

    def _element_in_scope(self, target: Element) -> bool:
        for node in reversed(self.stack):
            if node is target:
                return True
            if node.name == _OUTER:
                raise Resync("element in scope")
            if node.scoping():
                return False
        return False

    def _pop_until(self, name: str) -> None:
        while self.stack:
            node = self.stack.pop()
            if node.name == _OUTER:
                raise Resync(f"pop until {name}")
            if node.ns == HTML and node.name == name:
                return

    def _pop_until_one_of(self, names: frozenset[str]) -> None:
        while self.stack:
            node = self.stack.pop()
            if node.name == _OUTER:
                raise Resync("pop until")
            if node.ns == HTML and node.name in names:
                return

    def _implied_end(self, exclude: str = "") -> None:
        while self.stack:
            node = self.stack[-1]
            if node.ns == HTML and node.name in _IMPLIED_END and node.name != exclude:
                self.stack.pop()
            else:
                return

    def _clear_to(self, names: tuple[str, ...]) -> None:
        while self.stack:
            node = self.stack[-1]
            if node.name == _OUTER:
                raise Resync("clear stack")
            if node.ns == HTML and node.name in names:
                return
            self.stack.pop()

    def _reconstruct(self) -> None:
        afe = self.formatting
        if not afe:
            return
        entry = afe[-1]
        if entry is None or entry in self.stack:
            return
        i = len(afe) - 1
        while i > 0:
            entry = afe[i - 1]
            if entry is None or entry in self.stack:
                break
            i -= 1
        for j in range(i, len(afe)):
            old = afe[j]
            assert old is not None
            element = old.clone(self._parent_hidden())
            self._push(element)
            afe[j] = element

    def _clear_formatting(self) -> None:
        while self.formatting:
            if self.formatting.pop() is None:
                return

    def _in_formatting(self, name: str) -> Element | None:
        # A local tree knows only its own entries: those of the page before it
        # are not hidden and are no scope boundary, so they change nothing it
        # decides, and their end tags reach past its stack (and resync).
        for entry in reversed(self.formatting):
            if entry is None:
                return None
            if entry.name == name:
                return entry
        return None

    def _add_formatting(self, name: str, attrs: dict[str, str]) -> None:
        element = self._insert(name, attrs)
        same = []
        for entry in reversed(self.formatting):
            if entry is None:
                break
            if entry.name == name and entry.ns == HTML and entry.attrs == attrs:
                same.append(entry)
        if len(same) == 3:
            self.formatting.remove(same[-1])
        self.formatting.append(element)

    def _reset_mode(self) -> None:
        modes = {
            "select": "in select",
            "td": "in cell",
            "th": "in cell",
            "tr": "in row",
            "tbody": "in table body",
            "thead": "in table body",
            "tfoot": "in table body",
            "caption": "in caption",
            "colgroup": "in column group",
            "table": "in table",
            "head": "in body",
            "body": "in body",
            "frameset": "in frameset",
            "html": "before head",
        }
        for node in reversed(self.stack):
            if node.name == _OUTER or node is self.stack[0]:
                self.mode = "in body"
                return
            if node.ns != HTML:
                continue
            if node.name in modes:
                self.mode = modes[node.name]
                return
        self.mode = "in body"

    def _raw(self, element_name: str, state: int) -> None:
        self.state = state
        self.raw_name = element_name
        self._original = self.mode
        self.mode = "text"

    # ---- characters ----------------------------------------------------------

    def _chars(self, mode: str, nonspace: bool) -> bool:
        if mode == "initial":
            if not nonspace:
                return False
            self.mode = "before html"
            mode = self.mode
        if mode == "before html":
            if not nonspace:
                return False
            self._insert("html", {})
            self.mode = mode = "before head"
        if mode == "before head":
            if not nonspace:
                return False
            self.head = self._insert("head", {})
            self.mode = mode = "in head"
        if mode in ("in head", "in head noscript", "after head"):
            if not nonspace:
                return self._current_hidden()
            if mode == "in head noscript":
                self.stack.pop()
                mode = "in head"
            if mode == "in head":
                self.stack.pop()
            self._insert("body", {})
            self.mode = mode = "in body"
            self.frameset_ok = True
        if mode in ("after body", "after after body"):
            if not nonspace:
                return self._current_hidden() if mode == "after body" else False
            self.mode = mode = "in body"
        if mode in ("in frameset", "after frameset", "after after frameset"):
            return True  # only white space is kept there
        if mode == "in column group":
            if not nonspace:
                return self._current_hidden()
            if self._named("html"):
                return True
            self.stack.pop()
            self.mode = mode = "in table"
        if mode in ("in table", "in table body", "in row"):
            node = self.stack[-1]
            if node.ns == HTML and node.name in _TABLE_INSERT:
                if not nonspace:
                    return node.hidden
                self._from_table = True
                try:
                    return self._chars("in body", nonspace)
                finally:
                    self._from_table = False
            self._from_table = True
            try:
                return self._chars("in body", nonspace)
            finally:
                self._from_table = False
        if mode in ("in select", "in select in table", "text"):
            return self._current_hidden()
        # in body, in caption, in cell
        self._reconstruct()
        if self._real:
            self.frameset_ok = False
        return self._parent_hidden()

    # ---- start tags ------------------------------------------------------------

    def _foreign_start(self, token: _Start) -> _Start | None:
        name = token.name
        node = self.stack[-1]
        if name in _BREAKOUT or (
            name == "font"
            and ("color" in token.attrs or "face" in token.attrs or "size" in token.attrs)
        ):
            while self.stack:
                top = self.stack[-1]
                if (
                    top.ns == HTML
                    or top.point
                    or (top.ns == MATHML and top.name in _MATHML_TEXT_POINTS)
                ):
                    break
                self.stack.pop()
            return token
        ns = node.ns
        if ns == SVG:
            name = _SVG_NAMES.get(name, name)
        self._insert(name, token.attrs, ns)
        if token.self_closing:
            self.stack.pop()
        return None

    def _start(self, mode: str, token: _Start) -> _Start | None:
        name = token.name
        attrs = token.attrs
        if mode == "initial":
            self.mode = "before html"
            return token
        if mode == "before html":
            self._insert("html", attrs if name == "html" else {})
            self.mode = "before head"
            return None if name == "html" else token
        if name == "html":
            self._merge_html(attrs)
            return None
        if mode == "before head":
            if name == "head":
                self.head = self._insert("head", attrs)
                self.mode = "in head"
                return None
            self.head = self._insert("head", {})
            self.mode = "in head"
            return token
        if mode == "in head":
            return self._start_in_head(token)
        if mode == "in head noscript":
            if name in ("basefont", "bgsound", "link", "meta", "noframes", "style"):
                return self._start_in_head(token)
            if name in ("head", "noscript"):
                return None
            self.stack.pop()
            self.mode = "in head"
            return token
        if mode == "after head":
            if name == "body":
                self.frameset_ok = False
                self._insert("body", attrs)
                self.mode = "in body"
                return None
            if name == "frameset":
                self._insert("frameset", attrs)
                self.mode = "in frameset"
                return None
            if name in (
                "base",
                "basefont",
                "bgsound",
                "link",
                "meta",
                "noframes",
                "script",
                "style",
                "title",
            ):
                head = self.head or Element("head", HTML, {}, False)
                self._push(head)
                self._start_in_head(token)
                for i in range(len(self.stack) - 1, -1, -1):
                    if self.stack[i] is head:
                        del self.stack[i]
                        self._fix_from(i)
                        break
                if self.mode == "text":
                    self._original = "after head"
                return None
            if name == "head":
                return None
            self._insert("body", {})
            self.mode = "in body"
            self.frameset_ok = True
            return token
        if mode == "in body":
            return self._start_in_body(token)
        if mode == "in table":
            return self._start_in_table(token)
        if mode == "in caption":
            if name in _TABLE_PARTS:
                if not self._in_scope("caption", "table"):
                    return None
                self._end_caption()
                return token
            return self._start_in_body(token)
        if mode == "in column group":
            if name == "col":
                self._insert_void("col", attrs)
                return None
            if self._named("html"):
                return None
            self.stack.pop()
            self.mode = "in table"
            return token
        if mode == "in table body":
            if name == "tr":
                self._clear_to(("tbody", "tfoot", "thead", "html"))
                self._insert("tr", attrs)
                self.mode = "in row"
                return None
            if name in ("th", "td"):
                self._clear_to(("tbody", "tfoot", "thead", "html"))
                self._insert("tr", {})
                self.mode = "in row"
                return token
            if name in ("caption", "col", "colgroup", "tbody", "tfoot", "thead"):
                if not (
                    self._in_scope("tbody", "table")
                    or self._in_scope("thead", "table")
                    or self._in_scope("tfoot", "table")
                ):
                    return None
                self._clear_to(("tbody", "tfoot", "thead", "html"))
                self.stack.pop()
                self.mode = "in table"
                return token
            return self._start_in_table(token)
        if mode == "in row":
            if name in ("th", "td"):
                self._clear_to(("tr", "html"))
                self._insert(name, attrs)
                self.mode = "in cell"
                self.formatting.append(None)
                return None
            if name in ("caption", "col", "colgroup", "tbody", "tfoot", "thead", "tr"):
                if not self._in_scope("tr", "table"):
                    return None
                self._end_tr()
                return token
            return self._start_in_table(token)
        if mode == "in cell":
            if name in _TABLE_PARTS:
                if not (self._in_scope("td", "table") or self._in_scope("th", "table")):
                    return None
                self._close_cell()
                return token
            return self._start_in_body(token)
        if mode in ("in select", "in select in table"):
            if mode == "in select in table" and name in _SELECT_TABLE:
                self._end_select()
                return token
            return self._start_in_select(token)
        if mode == "after body" or mode == "after after body":
            self.mode = "in body"
            return token
        if mode == "in frameset":
            if name == "frameset":
                self._insert("frameset", attrs)
            elif name == "frame":
                self._insert_void("frame", attrs)
            elif name == "noframes":
                return self._start_in_body(token)
            return None
        if mode in ("after frameset", "after after frameset"):
            if name == "noframes":
                return self._start_in_head(token)
            return None
        raise AssertionError(mode)  # pragma: no cover - "text" gets no start tags

    def _merge_html(self, attrs: dict[str, str]) -> None:
        if self.local:
            raise Resync("html")
        if self.stack and _NOSWAP in attrs and not self.stack[0].noswap:
            self.hide_from = 0
        if self.stack:
            for key, value in attrs.items():
                self.stack[0].attrs.setdefault(key, value)
        return None

    def _start_in_head(self, token: _Start) -> _Start | None:
        name = token.name
        attrs = token.attrs
        if name == "title":
            self._insert(name, attrs)
            self._raw(name, RCDATA)
            return None
        if name in ("noframes", "style"):
            self._insert(name, attrs)
            self._raw(name, RAWTEXT)
            return None
        if name == "noscript":
            self._insert(name, attrs)
            self.mode = "in head noscript"
            return None
        if name == "script":
            self._insert(name, attrs)
            self._raw(name, SCRIPT)
            return None
        if name in ("base", "basefont", "bgsound", "command", "link", "meta"):
            self._insert_void(name, attrs)
            return None
        if name == "head":
            return None
        self.stack.pop()  # the head
        self.mode = "after head"
        return token

    def _start_in_body(self, token: _Start) -> _Start | None:
        name = token.name
        attrs = token.attrs
        if name in (
            "base",
            "basefont",
            "bgsound",
            "command",
            "link",
            "meta",
            "script",
            "style",
            "title",
        ):
            return self._start_in_head(token)
        if name == "body":
            if self.local:
                raise Resync("body")
            if len(self.stack) > 1 and self.stack[1].name == "body":
                self.frameset_ok = False
                body = self.stack[1]
                if _NOSWAP in attrs and not body.noswap:
                    self.hide_from = 0
                for key, value in attrs.items():
                    body.attrs.setdefault(key, value)
            return None
        if name == "frameset":
            if self.local:
                raise Resync("frameset")
            if len(self.stack) > 1 and self.stack[1].name == "body" and self.frameset_ok:
                del self.stack[1:]
                self._insert("frameset", attrs)
                self.mode = "in frameset"
            return None
        if name in _CLOSE_P_START:
            self._close_p_if_open()
            self._insert(name, attrs)
            return None
        if name in _HEADINGS:
            self._close_p_if_open()
            if self.stack[-1].ns == HTML and self.stack[-1].name in _HEADINGS:
                self.stack.pop()
            self._insert(name, attrs)
            return None
        if name in ("pre", "listing"):
            self._close_p_if_open()
            self._insert(name, attrs)
            self.frameset_ok = False
            return None
        if name == "form":
            if self.form is not None:
                return None
            self._close_p_if_open()
            self.form = self._insert(name, attrs)
            return None
        if name in ("li", "dd", "dt"):
            self.frameset_ok = False
            stops = ("li",) if name == "li" else ("dd", "dt")
            for node in reversed(self.stack):
                if node.name == _OUTER:
                    if len(self.stack) == 1:
                        break
                    raise Resync(name)
                if node.ns == HTML and node.name in stops:
                    self._end_in_body(node.name)
                    break
                if node.special and not (node.ns == HTML and node.name in ("address", "div", "p")):
                    break
            self._close_p_if_open()
            self._insert(name, attrs)
            return None
        if name == "plaintext":
            self._close_p_if_open()
            self._insert(name, attrs)
            self.state = PLAINTEXT
            return None
        if name == "a":
            open_a = self._in_formatting("a")
            if open_a is not None:
                self._adoption("a")
                if open_a in self.stack:
                    self._remove(open_a)
                if open_a in self.formatting:
                    self.formatting.remove(open_a)
            self._reconstruct()
            self._add_formatting(name, attrs)
            return None
        if name in _FORMATTING and name != "nobr":
            self._reconstruct()
            self._add_formatting(name, attrs)
            return None
        if name == "nobr":
            self._reconstruct()
            if self._in_scope("nobr"):
                self._end_in_body("nobr")
                self._reconstruct()
            self._add_formatting(name, attrs)
            return None
        if name == "button":
            if self._in_scope("button"):
                self._end_in_body("button")
                return token
            self._reconstruct()
            self._insert(name, attrs)
            self.frameset_ok = False
            return None
        if name in ("applet", "marquee", "object"):
            self._reconstruct()
            self._insert(name, attrs)
            self.formatting.append(None)
            self.frameset_ok = False
            return None
        if name == "xmp":
            self._close_p_if_open()
            self._reconstruct()
            self.frameset_ok = False
            self._insert(name, attrs)
            self._raw(name, RAWTEXT)
            return None
        if name == "table":
            if not self.quirks:
                self._close_p_if_open()
            self._insert(name, attrs)
            self.frameset_ok = False
            self.mode = "in table"
            return None
        if name in ("area", "br", "embed", "img", "keygen", "wbr", "input"):
            keep = self.frameset_ok
            self._reconstruct()
            self._insert_void(name, attrs)
            self.frameset_ok = False
            if name == "input" and attrs.get("type", "").lower() == "hidden":
                self.frameset_ok = keep
            return None
        if name in ("param", "source", "track"):
            self._insert_void(name, attrs)
            return None
        if name == "hr":
            self._close_p_if_open()
            self._insert_void(name, attrs)
            self.frameset_ok = False
            return None
        if name == "image":
            return _Start("img", attrs, token.self_closing)
        if name == "textarea":
            self._insert(name, attrs)
            self._raw(name, RCDATA)
            self.frameset_ok = False
            return None
        if name == "iframe":
            self.frameset_ok = False
            self._insert(name, attrs)
            self._raw(name, RAWTEXT)
            return None
        if name in ("noembed", "noframes"):
            self._insert(name, attrs)
            self._raw(name, RAWTEXT)
            return None
        if name == "select":
            self._reconstruct()
            self._insert(name, attrs)
            self.frameset_ok = False
            if self.mode in (
                "in table",
                "in caption",
                "in column group",
                "in table body",
                "in row",
                "in cell",
            ):
                self.mode = "in select in table"
            else:
                self.mode = "in select"
            return None
        if name in ("rb", "rtc", "rp", "rt"):
            if self._in_scope("ruby"):
                self._implied_end("rtc" if name in ("rp", "rt") else "")
            self._insert(name, attrs)
            return None
        if name in ("option", "optgroup"):
            if self._named("option"):
                self._end_in_body("option")
            self._reconstruct()
            self._insert(name, attrs)
            return None
        if name == "math" or name == "svg":
            self._reconstruct()
            self._insert(name, attrs, MATHML if name == "math" else SVG)
            if token.self_closing:
                self.stack.pop()
            return None
        if name in (
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
        ):
            return None
        self._reconstruct()
        self._insert(name, attrs)
        return None

    def _close_p_if_open(self) -> None:
        if self._in_scope("p", "button"):
            self._end_p()

    def _start_in_table(self, token: _Start) -> _Start | None:
        name = token.name
        attrs = token.attrs
        if name == "caption":
            self._clear_to(("table", "html"))
            self.formatting.append(None)
            self._insert(name, attrs)
            self.mode = "in caption"
            return None
        if name == "colgroup":
            self._clear_to(("table", "html"))
            self._insert(name, attrs)
            self.mode = "in column group"
            return None
        if name == "col":
            self._clear_to(("table", "html"))
            self._insert("colgroup", {})
            self.mode = "in column group"
            return token
        if name in ("tbody", "tfoot", "thead"):
            self._clear_to(("table", "html"))
            self._insert(name, attrs)
            self.mode = "in table body"
            return None
        if name in ("td", "th", "tr"):
            self._clear_to(("table", "html"))
            self._insert("tbody", {})
            self.mode = "in table body"
            return token
        if name == "table":
            if not self._in_scope("table", "table"):
                return None
            self._end_table()
            return token
        if name in ("style", "script"):
            return self._start_in_head(token)
        if name == "input" and attrs.get("type", "").lower() == "hidden":
            self._insert_void(name, attrs)
            return None
        if name == "form":
            if self.form is None:
                self.form = self._insert_void(name, attrs)
            return None
        self._from_table = True
        try:
            again = self._start_in_body(token)
        finally:
            self._from_table = False
        return again

    def _start_in_select(self, token: _Start) -> _Start | None:
        name = token.name
        attrs = token.attrs
        if name == "option":
            if self._named("option"):
                self.stack.pop()
            self._insert(name, attrs)
            return None
        if name == "optgroup":
            if self._named("option"):
                self.stack.pop()
            if self._named("optgroup"):
                self.stack.pop()
            self._insert(name, attrs)
            return None
        if name == "select":
            self._end_select()
            return None
        if name in ("input", "keygen", "textarea"):
            if self._in_scope("select", "select"):
                self._end_select()
                return token
            return None
        if name == "script":
            return self._start_in_head(token)
        return None

    # ---- end tags --------------------------------------------------------------

    def _foreign_end(self, name: str) -> str | None:
        index = len(self.stack) - 1
        node = self.stack[index]
        while True:
            if node.name.lower() == name:
                del self.stack[index:]
                return None
            index -= 1
            node = self.stack[index]
            if node.ns != HTML:
                continue
            if self.local:
                self._local_check(name, start=False)
            return self._end(self.mode, name)

    def _end(self, mode: str, name: str) -> str | None:
        if mode == "initial":
            self.mode = "before html"
            return name
        if mode == "before html":
            if name in ("head", "body", "html", "br"):
                self._insert("html", {})
                self.mode = "before head"
                return name
            return None
        if mode == "before head":
            if name in ("head", "body", "html", "br"):
                self.head = self._insert("head", {})
                self.mode = "in head"
                return name
            return None
        if mode == "in head":
            if name == "head":
                self.stack.pop()
                self.mode = "after head"
                return None
            if name in ("br", "html", "body"):
                self.stack.pop()
                self.mode = "after head"
                return name
            return None
        if mode == "in head noscript":
            if name == "noscript":
                self.stack.pop()
                self.mode = "in head"
                return None
            if name == "br":
                self.stack.pop()
                self.mode = "in head"
                return name
            return None
        if mode == "after head":
            if name in ("body", "html", "br"):
                self._insert("body", {})
                self.mode = "in body"
                self.frameset_ok = True
                return name
            return None
        if mode == "in body":
            return self._end_in_body(name)
        if mode == "text":
            self.stack.pop()
            self.mode = self._original
            return None
        if mode == "in table":
            return self._end_in_table(name)
        if mode == "in caption":
            if name == "caption":
                if self._in_scope("caption", "table"):
                    self._end_caption()
                return None
            if name == "table":
                if not self._in_scope("caption", "table"):
                    return None
                self._end_caption()
                return name
            if name in (
                "body",
                "col",
                "colgroup",
                "html",
                "tbody",
                "td",
                "tfoot",
                "th",
                "thead",
                "tr",
            ):
                return None
            return self._end_in_body(name)
        if mode == "in column group":
            if name == "colgroup":
                if not self._named("html"):
                    self.stack.pop()
                    self.mode = "in table"
                return None
            if name == "col":
                return None
            if self._named("html"):
                return None
            self.stack.pop()
            self.mode = "in table"
            return name
        if mode == "in table body":
            if name in ("tbody", "tfoot", "thead"):
                if self._in_scope(name, "table"):
                    self._clear_to(("tbody", "tfoot", "thead", "html"))
                    self.stack.pop()
                    self.mode = "in table"
                return None
            if name == "table":
                if not (
                    self._in_scope("tbody", "table")
                    or self._in_scope("thead", "table")
                    or self._in_scope("tfoot", "table")
                ):
                    return None
                self._clear_to(("tbody", "tfoot", "thead", "html"))
                self.stack.pop()
                self.mode = "in table"
                return name
            if name in ("body", "caption", "col", "colgroup", "html", "td", "th", "tr"):
                return None
            return self._end_in_table(name)
        if mode == "in row":
            if name == "tr":
                if self._in_scope("tr", "table"):
                    self._end_tr()
                return None
            if name == "table":
                if not self._in_scope("tr", "table"):
                    return None
                self._end_tr()
                return name
            if name in ("tbody", "tfoot", "thead"):
                if not self._in_scope(name, "table"):
                    return None
                self._end_tr()
                return name
            if name in ("body", "caption", "col", "colgroup", "html", "td", "th"):
                return None
            return self._end_in_table(name)
        if mode == "in cell":
            if name in ("td", "th"):
                if self._in_scope(name, "table"):
                    self._implied_end(name)
                    self._pop_until(name)
                    self._clear_formatting()
                    self.mode = "in row"
                return None
            if name in ("body", "caption", "col", "colgroup", "html"):
                return None
            if name in ("table", "tbody", "tfoot", "thead", "tr"):
                if not self._in_scope(name, "table"):
                    return None
                self._close_cell()
                return name
            return self._end_in_body(name)
        if mode in ("in select", "in select in table"):
            if mode == "in select in table" and name in _SELECT_TABLE:
                if not self._in_scope(name, "table"):
                    return None
                self._end_select()
                return name
            if name == "option":
                if self._named("option"):
                    self.stack.pop()
                return None
            if name == "optgroup":
                if (
                    self._named("option")
                    and len(self.stack) > 1
                    and self.stack[-2].ns == HTML
                    and self.stack[-2].name == "optgroup"
                ):
                    self.stack.pop()
                if self._named("optgroup"):
                    self.stack.pop()
                return None
            if name == "select":
                if self._in_scope("select", "select"):
                    self._end_select()
                return None
            return None
        if mode == "after body":
            if name == "html":
                self.mode = "after after body"
                return None
            self.mode = "in body"
            return name
        if mode == "after after body":
            self.mode = "in body"
            return name
        if mode == "in frameset":
            if name == "frameset":
                if not self._named("html"):
                    self.stack.pop()
                if not self._named("frameset"):
                    self.mode = "after frameset"
            return None
        if mode == "after frameset":
            if name == "html":
                self.mode = "after after frameset"
            return None
        return None  # after after frameset

    def _end_in_body(self, name: str) -> str | None:
        if name == "body":
            if self._in_scope("body"):
                self.mode = "after body"
            return None
        if name == "html":
            if self._in_scope("body"):
                self.mode = "after body"
                return name
            return None
        if name in _BLOCK_END:
            in_scope = self._in_scope(name)
            if in_scope:
                self._implied_end()
                self._pop_until(name)
            return None
        if name == "form":
            node = self.form
            self.form = None
            if node is not None and self._element_in_scope(node):
                self._implied_end()
                self._remove(node)
            return None
        if name == "p":
            self._end_p()
            return None
        if name in ("dd", "dt", "li"):
            if self._in_scope(name, "list" if name == "li" else ""):
                self._implied_end(name)
                self._pop_until(name)
            return None
        if name in _HEADINGS:
            for heading in sorted(_HEADINGS):
                if self._in_scope(heading):
                    self._implied_end()
                    break
            for heading in sorted(_HEADINGS):
                if self._in_scope(heading):
                    self._pop_until_one_of(_HEADINGS)
                    break
            return None
        if name in _FORMATTING:
            self._adoption(name)
            return None
        if name in ("applet", "marquee", "object"):
            if self._in_scope(name):
                self._implied_end()
                self._pop_until(name)
                self._clear_formatting()
            return None
        if name == "br":
            self._reconstruct()
            self._insert_void("br", {})
            return None
        self._end_other(name)
        return None

    def _end_other(self, name: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            node = self.stack[index]
            if node.name == _OUTER:
                if len(self.stack) == 1:
                    return
                raise Resync(name)
            if node.name == name:
                self._implied_end(name)
                del self.stack[self.stack.index(node) :]
                return
            if node.special:
                return

    def _end_p(self) -> None:
        if not self._in_scope("p", "button"):
            self._insert("p", {})
        self._implied_end("p")
        self._pop_until("p")

    def _end_caption(self) -> None:
        self._implied_end()
        self._pop_until("caption")
        self._clear_formatting()
        self.mode = "in table"

    def _end_tr(self) -> None:
        self._clear_to(("tr", "html"))
        self.stack.pop()
        self.mode = "in table body"

    def _close_cell(self) -> None:
        name = "td" if self._in_scope("td", "table") else "th"
        self._end(  # the cell's end tag, as the "in cell" mode handles it
            "in cell", name
        )

    def _end_table(self) -> None:
        self._implied_end()
        self._pop_until("table")
        self._reset_mode()

    def _end_select(self) -> None:
        self._pop_until("select")
        self._reset_mode()

    def _end_in_table(self, name: str) -> str | None:
        if name == "table":
            if self._in_scope("table", "table"):
                self._end_table()
            return None
        if name in (
            "body",
            "caption",
            "col",
            "colgroup",
            "html",
            "tbody",
            "td",
            "tfoot",
            "th",
            "thead",
            "tr",
        ):
            return None
        self._from_table = True
        try:
            return self._end_in_body(name)
        finally:
            self._from_table = False

    def _adoption(self, name: str) -> None:
        """The adoption agency algorithm (as html5lib 1.1 runs it), for the stack and list only."""
        for _ in range(8):
            element = self._in_formatting(name)
            if element is None or (element in self.stack and not self._in_scope(element.name)):
                self._end_other(name)
                return
            if element not in self.stack:
                self.formatting.remove(element)
                return
            at = self.stack.index(element)
            furthest = next((node for node in self.stack[at:] if node.special), None)
            if furthest is None:
                del self.stack[at:]
                self.formatting.remove(element)
                return
            if self.local:
                raise Resync("adoption agency")
            common = self.stack[at - 1]
            bookmark = self.formatting.index(element)
            last = node = furthest
            index = self.stack.index(node)
            for _inner in range(3):
                index -= 1
                node = self.stack[index]
                if node not in self.formatting:
                    self.stack.remove(node)
                    continue
                if node is element:
                    break
                if last is furthest:
                    bookmark = self.formatting.index(node) + 1
                clone = node.clone(node.parent_hidden)
                self.formatting[self.formatting.index(node)] = clone
                self.stack[self.stack.index(node)] = clone
                node = clone
                last = node
            if common.ns == HTML and common.name in _TABLE_INSERT:
                parent_hidden = self._foster_hidden()
            else:
                parent_hidden = common.hidden
            clone = element.clone(False)
            self.formatting.remove(element)
            self.formatting.insert(bookmark, clone)
            self.stack.remove(element)
            self.stack.insert(self.stack.index(furthest) + 1, clone)
            # The moved nodes lie under their new parents: each open element from
            # the last node up is the child of the one below it on the stack.
            if last in self.stack:
                for moved in self.stack[self.stack.index(last) :]:
                    _rehide(moved, parent_hidden)
                    parent_hidden = moved.hidden
            self._fix_from(0)


def _p_scope(element: Element, below: int) -> int:
    if element.name == _OUTER:
        return 2
    if element.ns == HTML and element.name == "p":
        return 1
    if element.scoping(_BUTTON) or (element.ns == HTML and element.name in _CLOSES_P):
        return 0  # a boundary, or an element that closed any p below it as it came
    return below


_BUTTON = frozenset(["button"])


def _rehide(node: Element, parent_hidden: bool) -> None:
    node.parent_hidden = parent_hidden
    node.hidden = parent_hidden or node.noswap or node.name in ("script", "style")


class _Start:
    __slots__ = ("attrs", "name", "self_closing")

    def __init__(self, name: str, attrs: dict[str, str], self_closing: bool) -> None:
        self.name = name
        self.attrs = attrs
        self.self_closing = self_closing


_QUIRKY_PUBLIC = (
    "+//silmaril//dtd html pro v0r11 19970101//",
    "-//as//dtd html 3.0 aswedit + extensions//",
    "-//advasoft ltd//dtd html 3.0 aswedit + extensions//",
    "-//ietf//dtd html 2.0",
    "-//ietf//dtd html 3",
    "-//ietf//dtd html level",
    "-//ietf//dtd html strict",
    "-//ietf//dtd html//",
    "-//metrius//dtd metrius presentational//",
    "-//microsoft//dtd internet explorer",
    "-//netscape comm. corp.//dtd",
    "-//o'reilly and associates//dtd html",
    "-//softquad",
    "-//spyglass//dtd html 2.0 extended//",
    "-//sq//dtd html 2.0 hotmetal + extensions//",
    "-//sun microsystems corp.//dtd hotjava",
    "-//w3c//dtd html 3",
    "-//w3c//dtd html 4.0 frameset//",
    "-//w3c//dtd html 4.0 transitional//",
    "-//w3c//dtd html experimental",
    "-//w3c//dtd w3 html//",
    "-//w3o//dtd w3 html 3.0//",
    "-//webtechs//dtd mozilla html",
)


def _quirky(public: str | None, system: str | None) -> bool:
    """Whether a DOCTYPE's identifiers put the page in quirks mode (the common cases)."""
    if public is None:
        return False
    public = public.lower()
    if public.startswith(_QUIRKY_PUBLIC) or public in (
        "-//w3o//dtd w3 html strict 3.0//en//",
        "html",
    ):
        return True
    legacy = ("-//w3c//dtd html 4.01 frameset//", "-//w3c//dtd html 4.01 transitional//")
    return system is None and public.startswith(legacy)
