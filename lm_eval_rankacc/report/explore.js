/* rankacc explore: the page's behaviour. Every text is set with textContent
   (never as HTML); the data are the JSON block #explore-data (runs, tasks,
   notes), the gzip + base64 block #rows-data (one compact row per document) and
   #chunk-K (texts and scores of CHUNK documents, inflated on demand). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("explore-data").textContent);
  var ROWS = [], N = 0, PAGE = D.page_size, CHUNK = D.chunk_size;
  var T = 0, ID = 1, FIRST = 2, NRESP = 3, TIE = 4, ALPHA = 5, LEN = 6, R = 7, RN = 8, MARGIN = 9, FLIP = 10,
      IDEAL = 11, RANKS = 12;
  var chunks = {}, haystack = null, shown = [], page = 0, current = -1, busy = 0, last = Promise.resolve();

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function fmt(v, digits) {
    if (v === null || v === undefined) { return "n/a"; }
    return typeof v === "number" ? v.toFixed(digits === undefined ? 3 : digits) : String(v);
  }
  function inflate(id) {  /* a gzip + base64 block, parsed as JSON */
    var bin = atob($(id).textContent), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }
  function track(promise) {  /* body[data-busy]: actions under way (tests and benchmarks wait for 0) */
    busy++;
    document.body.setAttribute("data-busy", String(busy));
    last = promise.then(function () {}, function (err) { console.error(err); }).then(function () {
      busy--;
      document.body.setAttribute("data-busy", String(busy));
    });
    return last;
  }
  window.exploreIdle = function () { return last; };
  function detail(k) {  /* texts and scores of row k: its block inflated once */
    var c = Math.floor(k / CHUNK);
    if (!chunks[c]) { chunks[c] = inflate("chunk-" + c); }
    return chunks[c].then(function (block) {
      var d = block.texts[k - c * CHUNK];
      d.runs = block.scores[k - c * CHUNK];
      return d;
    });
  }
  function prompt(d) { return d.turns.length ? d.turns.map(function (t) { return t[1]; }).join("\n\n") : d.prompt; }
  function texts() {  /* prompt and responses of every row, lower case, for the search */
    if (haystack) { return haystack; }
    var all = [];
    for (var k = 0; k < N; k += CHUNK) { all.push(detail(k)); }
    haystack = Promise.all(all).then(function () {
      var out = new Array(N);
      return Promise.all(ROWS.map(function (_, i) {
        return detail(i).then(function (d) {
          out[i] = (prompt(d) + "\u0000" + d.responses.join("\u0000")).toLowerCase();
        });
      })).then(function () { return out; });
    });
    return haystack;
  }

  /* ------------------------------------------------------------ controls */
  function option(select, value, label) {
    var o = el("option", label); o.value = value; select.appendChild(o); return o;
  }
  function control(label, id, options) {
    var l = el("label", label + " "), s = el("select");
    s.id = id;
    options.forEach(function (o) { option(s, o[0], o[1]); });
    l.appendChild(s); $("controls").appendChild(l);
    s.addEventListener("change", update);
    return s;
  }
  function buildControls() {
    control("task", "f-task", [["", "all"]].concat(D.tasks.map(function (t, i) { return [String(i), t]; })));
    D.runs.forEach(function (run, r) {
      control(run + ":", "f-run-" + r, [["", "any"], ["1", "correct (R)"], ["0", "incorrect (R)"],
                                        ["n1", "correct (R~)"], ["n0", "incorrect (R~)"]]);
    });
    D.compared.forEach(function (pair, j) {
      control("flip " + D.runs[pair[0]] + " \u2192 " + D.runs[pair[1]], "f-flip-" + j,
              [["", "any"]].concat(D.categories.map(function (c, i) { return [String(i), c]; })));
    });
    control("human ties", "f-ties", [["", "all"], ["only", "ties only"], ["none", "no ties"]]);
    control("responses", "f-n", [["", "all"], ["2", "n = 2"], ["more", "n > 2 only"]]);
    if (D.reference) {
      control("DPO (beta " + D.beta + ")", "f-ideal", [["", "any"], ["flip", "could flip it"],
                                                       ["hard", "c > 0 (hard)"], ["easy", "c \u2264 0"]]);
    }
    var sorts = [["file", "file order"], ["margin", "margin (base run), ascending"],
                 ["-margin", "margin (base run), descending"], ["-length", "length, longest first"],
                 ["length", "length, shortest first"]];
    if (D.reference) { sorts.splice(3, 0, ["-c", "hardness c, hardest first"], ["c", "hardness c, easiest first"]); }
    control("sort", "f-sort", sorts);
    var l = el("label", "search "), q = el("input");
    q.id = "f-search"; q.type = "search"; q.placeholder = "prompt or responses";
    q.addEventListener("input", update);
    l.appendChild(q); $("controls").appendChild(l);
  }

  /* ------------------------------------------------------------ filter, sort, count */
  function value(id) { var e = $(id); return e ? e.value : ""; }
  function keep(row, k, f) {
    if (f.task !== "" && row[T] !== +f.task) { return false; }
    for (var r = 0; r < f.runs.length; r++) {
      var want = f.runs[r];
      if (want === "") { continue; }
      var got = want.charAt(0) === "n" ? row[RN][r] : row[R][r];
      if (got === null || String(got) !== want.replace("n", "")) { return false; }
    }
    for (var j = 0; j < f.flips.length; j++) {
      if (f.flips[j] !== "" && row[FLIP][j] !== +f.flips[j]) { return false; }
    }
    if (f.ties === "only" && !row[TIE]) { return false; }
    if (f.ties === "none" && row[TIE]) { return false; }
    if (f.n === "2" && row[NRESP] !== 2) { return false; }
    if (f.n === "more" && row[NRESP] <= 2) { return false; }
    var ideal = row[IDEAL];
    if (f.ideal === "flip" && !(ideal && ideal[3])) { return false; }
    if (f.ideal === "hard" && !(ideal && ideal[1] !== null && ideal[1] > 0)) { return false; }
    if (f.ideal === "easy" && !(ideal && ideal[1] !== null && ideal[1] <= 0)) { return false; }
    if (f.search && f.text[k].indexOf(f.search) < 0) { return false; }
    return true;
  }
  function sortKey(row, key) {
    if (key === "margin") { return row[MARGIN][0]; }
    if (key === "c") { return row[IDEAL] ? row[IDEAL][1] : null; }
    return row[LEN];
  }
  function sortShown(spec) {
    if (spec === "file") { return; }
    var sign = spec.charAt(0) === "-" ? -1 : 1, key = spec.replace("-", "");
    shown.sort(function (a, b) {
      var x = sortKey(ROWS[a], key), y = sortKey(ROWS[b], key);
      if (x === null || y === null) { return (x === null) - (y === null) || a - b; }  /* n/a last */
      return sign * (x - y) || a - b;
    });
  }
  function filters() {
    return {
      task: value("f-task"), ties: value("f-ties"), n: value("f-n"), ideal: value("f-ideal"),
      runs: D.runs.map(function (_, r) { return value("f-run-" + r); }),
      flips: D.compared.map(function (_, j) { return value("f-flip-" + j); }),
      search: value("f-search").toLowerCase()
    };
  }
  function counts() {
    var c = {documents: shown.length, runs: [], flips: [], ideal: null};
    D.runs.forEach(function (_, r) {
      var x = {R: 0, R_n: 0, R_norm: 0, R_norm_n: 0};
      shown.forEach(function (k) {
        var row = ROWS[k];
        if (row[R][r] !== null) { x.R_n++; x.R += row[R][r]; }
        if (row[RN][r] !== null) { x.R_norm_n++; x.R_norm += row[RN][r]; }
      });
      c.runs.push(x);
    });
    D.compared.forEach(function (_, j) {
      var by = D.categories.map(function () { return 0; });
      shown.forEach(function (k) { var v = ROWS[k][FLIP][j]; if (v !== null) { by[v]++; } });
      c.flips.push(by);
    });
    if (D.reference) {
      var ideal = {correct: 0, n: 0, could_flip: 0, pairs: 0, c_positive: 0};
      shown.forEach(function (k) {
        var v = ROWS[k][IDEAL];
        if (v[0] !== null) { ideal.n++; ideal.correct += v[0]; }
        ideal.could_flip += v[3];
        if (v[1] !== null) { ideal.pairs++; ideal.c_positive += v[1] > 0 ? 1 : 0; }
      });
      c.ideal = ideal;
    }
    return c;
  }
  function share(k, n) { return n ? k + " / " + n + " (" + (k / n).toFixed(4) + ")" : "n/a"; }
  function renderCounts() {
    var c = counts(), box = $("counts");
    box.textContent = "";
    box.appendChild(el("div", c.documents + " of " + N + " documents shown"));
    var t = el("table"), head = el("tr");
    ["run", "R correct", "R~ correct"].forEach(function (h) { head.appendChild(el("th", h)); });
    t.appendChild(head);
    c.runs.forEach(function (x, r) {
      var tr = el("tr");
      tr.appendChild(el("td", D.runs[r]));
      tr.appendChild(el("td", share(x.R, x.R_n)));
      tr.appendChild(el("td", share(x.R_norm, x.R_norm_n)));
      t.appendChild(tr);
    });
    box.appendChild(t);
    c.flips.forEach(function (by, j) {
      var pair = D.compared[j];
      box.appendChild(el("div", "flips " + D.runs[pair[0]] + " \u2192 " + D.runs[pair[1]] + ": " +
        D.categories.map(function (name, i) { return name + " " + by[i]; }).join(", ")));
    });
    if (c.ideal) {
      box.appendChild(el("div", "idealized at beta " + D.beta + ": R* correct " + share(c.ideal.correct, c.ideal.n) +
        "; DPO could flip " + c.ideal.could_flip + "; c > 0 (hard): " + share(c.ideal.c_positive, c.ideal.pairs)));
    }
    box.setAttribute("data-counts", JSON.stringify(c));
  }
  function update() {
    var f = filters();
    return track((f.search ? texts() : Promise.resolve(null)).then(function (text) {
      f.text = text;
      shown = [];
      for (var k = 0; k < N; k++) { if (keep(ROWS[k], k, f)) { shown.push(k); } }
      sortShown(value("f-sort") || "file");
      page = 0;
      renderCounts();
      renderPage();
    }));
  }

  /* ------------------------------------------------------------ the list, one page at a time */
  function outcome(v) { return v === null ? "n/a" : (v ? "\u2713" : "\u2717"); }
  function renderPage() {
    var body = $("rows"), pages = Math.max(1, Math.ceil(shown.length / PAGE));
    body.textContent = "";
    shown.slice(page * PAGE, (page + 1) * PAGE).forEach(function (k) {
      var row = ROWS[k], tr = el("tr", null, "doc" + (k === current ? " current" : ""));
      tr.setAttribute("data-doc-id", row[ID]);
      tr.setAttribute("data-index", String(k));
      tr.tabIndex = 0;
      tr.appendChild(el("td", D.tasks[row[T]]));
      tr.appendChild(el("td", row[ID]));
      tr.appendChild(el("td", row[FIRST], "first"));
      tr.appendChild(el("td", row[NRESP] + (row[TIE] ? " (tie)" : ""), "num"));
      tr.appendChild(el("td", row[RANKS].join(" ") + (row[ALPHA] === null ? "" : " \u03b1 " + fmt(row[ALPHA], 2))));
      D.runs.forEach(function (_, r) {
        tr.appendChild(el("td", outcome(row[R][r]) + " " + outcome(row[RN][r]), row[R][r] ? "ok" : "bad"));
        tr.appendChild(el("td", fmt(row[MARGIN][r], 2), "num"));
      });
      D.compared.forEach(function (_, j) {
        tr.appendChild(el("td", row[FLIP][j] === null ? "n/a" : D.categories[row[FLIP][j]]));
      });
      if (D.reference) {
        var v = row[IDEAL];
        tr.appendChild(el("td", outcome(v[0])));
        tr.appendChild(el("td", fmt(v[1], 2), "num"));
        tr.appendChild(el("td", fmt(v[2], 3), "num"));
        tr.appendChild(el("td", v[3] ? "yes" : ""));
      }
      tr.addEventListener("click", function () { open(k); });
      body.appendChild(tr);
    });
    $("page-info").textContent = "page " + (page + 1) + " of " + pages;
  }
  function buildHead() {
    var tr = $("head"), heads = ["task", "id", "prompt", "n", "human ranks"];
    D.runs.forEach(function (run) { heads.push(run + " R R~", run + " margin"); });
    D.compared.forEach(function (p) { heads.push("flip " + D.runs[p[0]] + " \u2192 " + D.runs[p[1]]); });
    if (D.reference) { heads.push("R* @ " + D.beta, "c", "loss threshold", "DPO could flip"); }
    heads.forEach(function (h, i) { tr.appendChild(el("th", h, i === 2 ? "first" : "")); });
    $("prev").addEventListener("click", function () { if (page > 0) { page--; renderPage(); } });
    $("next").addEventListener("click", function () {
      if ((page + 1) * PAGE < shown.length) { page++; renderPage(); }
    });
  }

  /* ------------------------------------------------------------ one document */
  function scoresTable(d, row) {
    var t = el("table"), head = el("tr");
    ["run", "response", "human rank", "model rank", "log-likelihood", "per token", "per byte", "tokens"].forEach(
      function (h) { head.appendChild(el("th", h)); });
    t.appendChild(head);
    d.runs.forEach(function (s, r) {
      s.loglik.forEach(function (ll, i) {
        var tr = el("tr");
        [D.runs[r], i + 1, d.ranks[i], s.model_ranks[i], fmt(ll, 4), fmt(s.per_token[i], 4), fmt(s.per_byte[i], 4),
         s.n_tokens[i] === null ? "n/a" : s.n_tokens[i]].forEach(function (v) { tr.appendChild(el("td", v)); });
        t.appendChild(tr);
      });
    });
    return t;
  }
  function open(k) {
    return track(detail(k).then(function (d) { show(k, d); }));
  }
  function show(k, d) {
    var row = ROWS[k], box = $("detail");
    current = k;
    box.textContent = "";
    box.setAttribute("data-doc-id", row[ID]);
    box.appendChild(el("h2", D.tasks[row[T]] + " / " + row[ID]));
    var facts = "n = " + row[NRESP] + (row[TIE] ? ", human tie" : "") +
      (row[ALPHA] === null ? "" : ", alpha = " + row[ALPHA]) + (d.votes.length ? ", votes " + d.votes.join(" / ") : "");
    box.appendChild(el("div", facts, "hint"));
    box.appendChild(el("h2", "prompt"));
    var turns = d.turns.length ? d.turns : [["prompt", d.prompt]];  /* a transcript as its turns */
    turns.forEach(function (t) {
      var div = el("div", null, "turn " + t[0]);
      div.appendChild(el("span", t[0], "role"));
      div.appendChild(document.createTextNode(t[1]));
      box.appendChild(div);
    });
    box.appendChild(el("h2", "responses"));
    var side = el("div", null, "responses"), best = Math.min.apply(null, d.ranks);
    d.responses.forEach(function (resp, i) {
      var div = el("div", null, "response" + (d.ranks[i] === best && !row[TIE] ? " preferred" : ""));
      div.appendChild(el("b", "response " + (i + 1) + " \u2014 human rank " + d.ranks[i]));
      div.appendChild(el("pre", resp));
      side.appendChild(div);
    });
    box.appendChild(side);
    box.appendChild(el("h2", "scores"));
    box.appendChild(scoresTable(d, row));
    var at = shown.indexOf(k);
    if (at >= 0 && Math.floor(at / PAGE) !== page) { page = Math.floor(at / PAGE); }
    renderPage();
    var hash = "#doc=" + encodeURIComponent(row[ID]);
    if (location.hash !== hash) { history.replaceState(null, "", hash); }
  }
  function step(by) {
    if (!shown.length) { return; }
    var at = shown.indexOf(current);
    at = at < 0 ? 0 : Math.min(shown.length - 1, Math.max(0, at + by));
    open(shown[at]);
  }
  function fromHash() {
    var m = /^#doc=(.*)$/.exec(location.hash);
    if (!m) { return; }
    var id = decodeURIComponent(m[1]);
    for (var k = 0; k < N; k++) { if (ROWS[k][ID] === id) { open(k); return; } }
    $("detail").textContent = "";
    $("detail").appendChild(el("div", "no document " + id + " on this page", "hint"));
  }
  document.addEventListener("keydown", function (e) {
    if (e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT")) { return; }
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); step(1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); step(-1); }
    else if (e.key === "Enter" && e.target && e.target.hasAttribute && e.target.hasAttribute("data-index")) {
      open(+e.target.getAttribute("data-index"));
    }
    else if (e.key === "Escape") { current = -1; $("detail").textContent = ""; renderPage(); }
  });
  window.addEventListener("hashchange", fromHash);

  $("title").textContent = D.title;
  var notes = $("notes");
  D.notes.forEach(function (n) { notes.appendChild(el("li", n)); });
  track(inflate("rows-data").then(function (rows) {
    ROWS = rows; N = rows.length;
    buildControls();
    buildHead();
    return update();
  }).then(function () {
    fromHash();
    document.body.setAttribute("data-ready", "1");
  }));
})();
