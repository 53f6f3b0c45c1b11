/* dni-engine: shows the visitor's tracking number on cached pages and single-page apps.
 * One formatting implementation: the server rewrites what this script sends (runs of text
 * per block, as tiny HTML) and this script puts the answer back, node by node. No eval,
 * no inline styles: it runs under a strict Content Security Policy. */
(function () {
  "use strict";
  var w = window, d = document;
  if (w.dni && w.dni.version) return;
  // The element names the server's rewriter reads as inline (dni_engine/rewrite/inline.py).
  var INLINE = "a abbr b bdi bdo cite code data dfn em font i kbd mark q s samp small span strong time u var";
  var SKIP = "script style textarea noscript template";
  var inline = {}, skip = {};
  INLINE.split(" ").forEach(function (n) { inline[n] = 1; });
  SKIP.split(" ").forEach(function (n) { skip[n] = 1; });
  var me = d.currentScript;
  var conf = function (name, fallback) {
    var v = me && me.getAttribute("data-" + name);
    return v === null || v === undefined ? fallback : v;
  };
  // The src as written: the resolved one follows a <base> parsed after the tag.
  var src = (me && me.getAttribute("src") || "").replace(/[?#].*$/, "");
  var prefix = conf("prefix", /\/dni\.js$/.test(src) ? src.slice(0, -7) : "/_dni");
  // A path is the page's own origin's, whatever <base> the page holds.
  if (/^\/(?!\/)/.test(prefix)) prefix = location.origin + prefix;
  var timeout = +conf("timeout", 2000) || 2000;
  var cookieName = conf("cookie", "dni_number");
  var storeKey = "dni:" + prefix;
  var hideAttr = conf("hide", null);
  var hideFor = hideAttr === null ? 0 : Math.min(+hideAttr || 1000, 1000);
  // Parts two text nodes in a fragment; written so that the script can stand inline.
  var PART = "\x3c!---->";
  var digit = /\d/;
  var telHref = /^\s*(tel|callto):/i;

  // What the server answered per fragment (keyed by its original text): null (unchanged)
  // or the new text of each node; "href:" + target for links.
  var known = {};
  // Node -> [original, written]: what this script wrote, to tell its own writes apart.
  var wrote = new WeakMap();
  var queue = [], pending = {}, timer = 0, sentFirst = false, dead = false, bot = false;
  var firstPending = false, later = [];
  var readyFlag = false, waiters = [], hidden = [], observer = null, loaded = false;
  var has = function (o, k) { return Object.prototype.hasOwnProperty.call(o, k); };
  var api = {
    version: 1,
    number: null,
    formatted: null,
    outcome: null,
    ready: function (cb) {
      if (readyFlag) Promise.resolve(api).then(cb);
      else waiters.push(cb);
    },
    swap: function (node) {
      return new Promise(function (done) {
        guard(scan)(node && node.nodeType ? node : d.documentElement);
        send(done);
      });
    }
  };
  w.dni = api;

  // The cache for returning visitors: valid while the server's number cookie names its number.
  var cache = null;
  try {
    var held = JSON.parse(w.localStorage.getItem(storeKey) || "null");
    // The server's cookie: E164|formatted|pool|lease end (seconds since the epoch).
    var lease = readCookie().split("|");
    if (held && held.e && lease[0] === held.e && !(+lease[3] * 1000 < Date.now())) {
      cache = held;
      known = held.f || {};
      api.number = held.e;
      api.formatted = held.n;
    }
  } catch (e) { /* no storage: no cache */ }

  function readCookie() {
    var parts = d.cookie ? d.cookie.split(/; */) : [];
    for (var i = 0; i < parts.length; i++) {
      var at = parts[i].indexOf("=");
      if (parts[i].slice(0, at) === cookieName) {
        try { return decodeURIComponent(parts[i].slice(at + 1)); } catch (e) { return parts[i].slice(at + 1); }
      }
    }
    return "";
  }

  function esc(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function original(node, now) {
    var was = wrote.get(node);
    return was && was[1] === now ? was[0] : now;
  }

  // The runs of text under root, per block: text nodes and inline elements' bare tags,
  // written from the texts the page had before this script swapped them.
  function runs(root, out, links) {
    var cur = null;
    function open() {
      if (!cur) cur = { html: "", nodes: [], texts: [], orig: [], last: "" };
    }
    function text(node) {
      open();
      if (cur.last === "t") cur.html += PART;
      var o = original(node, node.data);
      cur.html += esc(o);
      cur.nodes.push(node);
      cur.texts.push(node.data);
      cur.orig.push(o);
      cur.last = "t";
    }
    function tag(t) {
      open();
      cur.html += t;
      cur.last = "g";
    }
    function end() {
      if (cur && cur.nodes.length && digit.test(cur.html) && cur.html.length <= 2000) out.push(cur);
      cur = null;
    }
    function walk(el) {
      for (var c = el.firstChild; c; c = c.nextSibling) {
        var type = c.nodeType;
        if (type === 3) { if (c.data) text(c); }
        else if (type === 8) { if (cur) tag(PART); }
        else if (type === 1) {
          var name = c.localName;
          if (skip[name] || c.hasAttribute("data-dni-noswap") || c.isContentEditable) { end(); continue; }
          if (hideFor && c.hasAttribute("data-dni-hide")) hide(c);
          var href = c.getAttribute("href");
          if (href && telHref.test(href)) links.push(c);
          if (inline[name]) { tag("<" + name + ">"); walk(c); tag("</" + name + ">"); }
          else { end(); walk(c); end(); }
        }
      }
    }
    walk(root);
    end();
  }

  function excluded(el) {
    for (var n = el; n && n.nodeType === 1; n = n.parentNode) {
      if (skip[n.localName] || n.hasAttribute("data-dni-noswap") || n.isContentEditable) return true;
    }
    return false;
  }

  // The nearest element that is no inline element: a run never crosses it.
  function block(node) {
    var n = node.nodeType === 1 ? node : node.parentNode;
    while (n && n.parentNode && n.parentNode.nodeType === 1 && inline[n.localName]) n = n.parentNode;
    return n && n.nodeType === 1 ? n : null;
  }

  // Apply at once what is known (before paint, from a microtask); queue the rest.
  function scan(root) {
    // A shadow root (or fragment) given to swap() is scanned as it is.
    var el = root && (root.nodeType === 11 ? root : block(root));
    if (!el || bot || dead || excluded(el.nodeType === 11 ? el.host : el)) return;
    var found = [], links = [], changed = 0, i;
    runs(el, found, links);
    for (i = 0; i < found.length; i++) {
      var run = found[i], k = run.html;
      if (has(known, k)) changed += apply(run, known[k]);
      if (loaded && (!has(known, k) || !sentFirst)) enqueue(k, run);
    }
    for (i = 0; i < links.length; i++) {
      var a = links[i], h = original(a, a.getAttribute("href")), lk = "href:" + h;
      if (h.length > 2000) continue;
      var item = { link: a, now: a.getAttribute("href"), orig: h };
      if (has(known, lk)) changed += applyLink(item, known[lk]);
      if (loaded && (!has(known, lk) || !sentFirst)) enqueue(lk, item);
    }
    if (changed) fire(changed, true);
    if (queue.length) schedule();
  }

  function enqueue(key, item) {
    if (pending[key]) pending[key].push(item);
    else { pending[key] = [item]; queue.push(key); }
  }

  function apply(run, texts) {
    var n = 0, i;
    for (i = 0; i < run.nodes.length; i++) if (run.nodes[i].data !== run.texts[i]) return 0;
    for (i = 0; i < run.nodes.length; i++) {
      var node = run.nodes[i], next = texts && typeof texts[i] === "string" ? texts[i] : run.orig[i];
      if (next === node.data) continue;
      if (next === run.orig[i]) wrote.delete(node); else wrote.set(node, [run.orig[i], next]);
      node.data = next;
      n++;
    }
    return n;
  }

  function applyLink(item, to) {
    var a = item.link, next = typeof to === "string" ? to : item.orig;
    if (a.getAttribute("href") !== item.now || next === item.now) return 0;
    if (next === item.orig) wrote.delete(a); else wrote.set(a, [item.orig, next]);
    a.setAttribute("href", next);
    return 1;
  }

  function schedule() {
    if (!timer && loaded) timer = setTimeout(function () { timer = 0; send(); }, sentFirst ? 30 : 0);
  }

  // Send what is queued (at most 200 fragments and 100 links a request); apply the answer.
  function send(done) {
    // Until the first answer has set the visitor's cookies, nothing else is asked:
    // a request without them would be another visitor.
    if (firstPending) {
      if (done) later.push(done);
      return;
    }
    var frags = [], hrefs = [], keep = [];
    queue.forEach(function (k) {
      if (k.slice(0, 5) === "href:") { if (hrefs.length < 100) hrefs.push(k.slice(5)); else keep.push(k); }
      else if (frags.length < 200) frags.push(k); else keep.push(k);
    });
    queue = keep;
    if (dead || bot || (sentFirst && !frags.length && !hrefs.length)) {
      if (done) done(api);
      return;
    }
    var first = !sentFirst, over = false;
    sentFirst = true;
    firstPending = first;
    var ctl = w.AbortController ? new AbortController() : null;
    var clock = setTimeout(function () {
      fail("no answer in " + timeout + " ms");
      if (ctl) ctl.abort();
    }, timeout);
    fetch(prefix + "/swap", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ url: location.href, referrer: d.referrer, fragments: frags, links: hrefs }),
      signal: ctl ? ctl.signal : undefined
    }).then(function (r) {
      if (!r.ok) throw new Error("status " + r.status);
      return r.json();
    }).then(function (answer) {
      if (over) return;
      over = true;
      clearTimeout(clock);
      // The page view's outcome is the first answer's; a later one (content added
      // after load) finds the lease that answer took, "kept", and only its number counts.
      if (first) {
        api.outcome = answer.outcome;
        bot = answer.outcome === "bot";
      }
      if (first || answer.number) {
        api.number = answer.number || null;
        api.formatted = answer.formatted || null;
      }
      var changed = 0, ft = answer.fragments || [], lt = answer.links || [];
      frags.forEach(function (k, i) {
        var t = Array.isArray(ft[i]) ? ft[i] : null;
        known[k] = t;
        (pending[k] || []).forEach(function (run) { changed += apply(run, t); });
        delete pending[k];
      });
      hrefs.forEach(function (h, i) {
        var to = typeof lt[i] === "string" ? lt[i] : null, k = "href:" + h;
        known[k] = to;
        (pending[k] || []).forEach(function (item) { changed += applyLink(item, to); });
        delete pending[k];
      });
      save();
      fire(changed, false);
      if (first) ready();
      if (!api.number) stop();
      if (done) done(api);
      if (first) release();
      else if (queue.length) schedule();
    }).catch(function (e) {
      fail(e && e.message);
    });
    function fail(why) {
      if (over) return;
      over = true;
      clearTimeout(clock);
      if (!dead) console.warn("dni: the number service did not answer (" + why + "); the page keeps its numbers");
      dead = true;
      stop();
      if (done) done(api);
      if (first) release();
    }
  }

  function release() {
    firstPending = false;
    var waiting = later;
    later = [];
    send(function () { waiting.forEach(function (f) { f(api); }); });
  }

  function save() {
    if (!api.number) return;
    try {
      var f = {}, n = 0;
      for (var k in known) if (has(known, k) && n++ < 300) f[k] = known[k];
      w.localStorage.setItem(storeKey, JSON.stringify({ n: api.formatted, e: api.number, f: f }));
    } catch (e) { /* full or refused: no cache */ }
  }

  function fire(changed, cached) {
    d.dispatchEvent(new CustomEvent("dni:swapped", {
      detail: { number: api.number, formatted: api.formatted, changed: changed, cached: cached }
    }));
  }

  function hide(el) {
    if (el.dniHidden) return;
    el.dniHidden = el.style.visibility || "-";
    el.style.visibility = "hidden";
    hidden.push(el);
  }

  function reveal() {
    hideFor = 0;
    hidden.forEach(function (el) {
      el.style.visibility = el.dniHidden === "-" ? "" : el.dniHidden;
      el.dniHidden = "";
    });
    hidden = [];
  }

  function ready() {
    reveal();
    if (readyFlag) return;
    readyFlag = true;
    waiters.forEach(function (cb) { Promise.resolve(api).then(cb); });
    waiters = [];
  }

  function stop() {
    if (observer) observer.disconnect();
    queue = [];
    pending = {};
    ready();
  }

  // Later content: single-page apps, pop-ups. Runs before paint (a microtask).
  function observed(records) {
    if (!loaded && !cache && !hideFor) return;
    var roots = [];
    for (var i = 0; i < records.length; i++) {
      var r = records[i], target = r.target;
      if (r.type !== "childList") {
        var was = wrote.get(target);
        var now = r.type === "attributes" ? target.getAttribute("href") : target.data;
        if (was && was[1] === now) continue;
      }
      var added = r.type === "childList" ? r.addedNodes : [], whole = !r.removedNodes.length;
      // An added block starts runs of its own: only it is scanned, not its parent's block.
      for (var k = 0; k < added.length && whole; k++) {
        whole = added[k].nodeType === 1 && !inline[added[k].localName];
      }
      if (r.type === "childList" && whole) {
        for (k = 0; k < added.length; k++) if (roots.indexOf(added[k]) < 0) roots.push(added[k]);
        continue;
      }
      var root = block(target);
      if (root && roots.indexOf(root) < 0) roots.push(root);
    }
    roots = roots.filter(function (a) {
      return !roots.some(function (b) { return b !== a && b.contains(a); });
    });
    for (var j = 0; j < roots.length; j++) scan(roots[j]);
  }

  function start() {
    loaded = true;
    scan(d.documentElement);
    if (!sentFirst) send();
  }

  // A fault of this script never reaches the page: one warning, and it stops.
  function guard(f) {
    return function (x) {
      try { return f(x); } catch (e) {
        if (!dead) console.warn("dni: stopped (" + (e && e.message) + "); the page keeps its numbers");
        dead = true;
        stop();
      }
    };
  }

  d.addEventListener("dni:swap", guard(function (e) {
    var node = e.detail && e.detail.node ? e.detail.node : e.target;
    api.swap(node === d ? d.documentElement : node);
  }));
  if (cache) hideFor = 0;
  else if (hideFor) setTimeout(reveal, hideFor);
  if (w.MutationObserver) {
    observer = new MutationObserver(guard(observed));
    observer.observe(d.documentElement, {
      childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["href"]
    });
  }
  if (d.readyState === "loading") {
    if (cache || hideFor) guard(scan)(d.documentElement);
    d.addEventListener("DOMContentLoaded", guard(start));
  } else guard(start)();
})();
