/* The web page of the Timeline Service: plain SVG and a little vanilla JavaScript.
 *
 * It reads the JSON API (/api/v1/...) and draws. Every piece of data is put into the
 * page with textContent or setAttribute, never as HTML, so a title that contains
 * <script> is shown as text.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var DAY = 86400000;
  var QUAD_COLOURS = {
    verbal_cooperation: ["#3f8f4f", "#245a2f"],
    material_cooperation: ["#1d6a3a", "#0f3d20"],
    neutral: ["#56657a", "#2e3845"],
    verbal_conflict: ["#c56a12", "#7a3f06"],
    material_conflict: ["#b3261e", "#6b1410"]
  };
  var WEAK = { claimed: true, disputed: true, denied: true };
  var FUZZY_PRECISIONS = { month: true, season: true, year: true, decade: true, century: true, range: true };
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // ---------------------------------------------------------------- helpers

  /** An HTML element with attributes and text; text only ever goes in as textContent. */
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      node.setAttribute(name, value === true ? "" : String(value));
    });
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function append(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return parent;
  }

  /** Only http(s) links from data become hrefs (no javascript: or data: URLs). */
  function safeUrl(value) {
    return typeof value === "string" && /^https?:\/\//i.test(value) ? value : null;
  }

  function actorHref(id) {
    return "/actors/" + encodeURIComponent(id);
  }

  function devHref(id, extra) {
    var params = new URLSearchParams(extra || {});
    params.set("dev", id);
    return "/?" + params.toString();
  }

  function humanize(name) {
    return String(name).replace(/_/g, " ");
  }

  /** Fetches JSON; a problem document becomes an Error with its detail. */
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (!response.ok) {
            var detail = body && (body.detail || body.title) || response.statusText;
            if (body && body.errors) {
              detail += " (" + Object.keys(body.errors).map(function (k) {
                return k + ": " + [].concat(body.errors[k]).join(" ");
              }).join("; ") + ")";
            }
            var error = new Error(detail);
            error.status = response.status;
            throw error;
          }
          return body;
        });
      });
  }

  /** Every page of a timeline (limit=500), following next_cursor. */
  function loadTimeline(path, params) {
    var items = [];
    var asOf = null;
    function page(cursor, count) {
      var query = new URLSearchParams(params);
      query.set("limit", "500");
      if (cursor) query.set("cursor", cursor);
      return getJSON(path + "?" + query.toString()).then(function (body) {
        items.push.apply(items, body.items);
        asOf = body.as_of;
        if (body.next_cursor && count < 400) return page(body.next_cursor, count + 1);
        return { items: items, as_of: asOf };
      });
    }
    return page(null, 0);
  }

  // ---------------------------------------------------------------- dates

  /** Days since 1970-01-01 of an ISO day (years may have more or fewer than 4 digits). */
  function dayNum(iso) {
    var m = /^(-?\d{1,6})-(\d\d)-(\d\d)$/.exec(iso || "");
    if (!m) return NaN;
    var d = new Date(0);
    d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    d.setUTCHours(0, 0, 0, 0);
    return Math.round(d.getTime() / DAY);
  }

  function dayDate(n) {
    return new Date(Math.floor(n) * DAY);
  }

  function isoDay(n) {
    var d = dayDate(n);
    var y = d.getUTCFullYear();
    return (y < 0 ? "-" : "") + String(Math.abs(y)).padStart(4, "0") + "-" +
      String(d.getUTCMonth() + 1).padStart(2, "0") + "-" + String(d.getUTCDate()).padStart(2, "0");
  }

  function fmtDay(iso) {
    var n = typeof iso === "number" ? iso : dayNum(iso);
    if (isNaN(n)) return String(iso);
    var d = dayDate(n);
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear();
  }

  function todayIso() {
    var now = new Date();
    return now.getFullYear() + "-" + String(now.getMonth() + 1).padStart(2, "0") + "-" +
      String(now.getDate()).padStart(2, "0");
  }

  function fmtMoment(value) {
    if (!value) return "";
    var d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function isFuzzy(dev) {
    return Boolean(dev.qualified) || Boolean(FUZZY_PRECISIONS[dev.precision]) ||
      (dev.precision !== "day" && dev.precision !== "interval");
  }

  function dateKind(dev) {
    if (isFuzzy(dev)) return "fuzzy";
    return dev.precision === "interval" ? "bar" : "point";
  }

  /** Words for when a development happened, saying plainly when the date is an estimate. */
  function describeWhen(dev) {
    var kind = dateKind(dev);
    if (kind === "point") return fmtDay(dev.earliest);
    if (kind === "bar") return "lasted from " + fmtDay(dev.earliest) + " to " + fmtDay(dev.latest);
    var how = dev.qualified ? "uncertain or approximate date" : "only the " + dev.precision + " is known";
    if (dev.earliest === dev.latest) return "estimate: " + fmtDay(dev.earliest) + " (" + how + ")";
    return "estimate: some time between " + fmtDay(dev.earliest) + " and " + fmtDay(dev.latest) + " (" + how + ")";
  }

  // ---------------------------------------------------------------- shared look-ups

  var lookups = null;

  /** Actor names and the vocabulary, fetched once per page. */
  function loadLookups() {
    if (!lookups) {
      lookups = Promise.all([getJSON("/api/v1/actors?limit=500"), getJSON("/api/v1/vocabulary")])
        .then(function (answers) {
          var actors = {};
          answers[0].items.forEach(function (actor) { actors[actor.id] = actor; });
          return { actors: actors, vocabulary: answers[1] };
        });
    }
    return lookups;
  }

  function actorName(id, look) {
    var actor = look && look.actors[id];
    return actor ? actor.name : id;
  }

  function quadOf(dev, look) {
    var info = look && look.vocabulary.categories[dev.category];
    return info ? info.quad_class : "neutral";
  }

  function setStatus(text, isError) {
    var status = document.getElementById("status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
    status.setAttribute("role", isError ? "alert" : "status");
  }

  // ---------------------------------------------------------------- the timeline page

  var GUTTER = 176;      // lane labels
  var RIGHT = 16;
  var AXIS = 40;         // axis height
  var ROW = 24;          // one row of marks in a lane
  var LANE_PAD = 8;
  var MIN_SPAN = 4;      // days: the closest zoom
  var MAX_SPAN = 365.25 * 200;
  var TOP_ACTOR_LANES = 8;
  var LABEL_CHARS = 40;
  var CHAR_PX = 6.6;

  function TimelinePage() {
    this.chart = document.getElementById("chart");
    this.details = document.getElementById("details");
    this.form = document.getElementById("filters");
    this.list = document.getElementById("list");
    this.items = [];
    this.look = null;
    this.view = null;          // [first day, last day] shown
    this.state = readState();
    this.openId = null;
    this.opener = null;
    this.request = 0;
  }

  /** The page's state from the URL query string. */
  function readState() {
    var params = new URLSearchParams(window.location.search);
    return {
      actor: params.getAll("actor").filter(Boolean),
      category: params.getAll("category").filter(Boolean),
      from: params.get("from") || "",
      to: params.get("to") || "",
      q: params.get("q") || "",
      as_of: params.get("as_of") || "",
      lanes: params.get("lanes") === "category" ? "category" : "actor",
      dev: params.get("dev") || ""
    };
  }

  function stateQuery(state, withDev) {
    var params = new URLSearchParams();
    state.actor.forEach(function (a) { params.append("actor", a); });
    state.category.forEach(function (c) { params.append("category", c); });
    ["from", "to", "q", "as_of"].forEach(function (name) {
      if (state[name]) params.set(name, state[name]);
    });
    if (state.lanes !== "actor") params.set("lanes", state.lanes);
    if (withDev && state.dev) params.set("dev", state.dev);
    return params;
  }

  /** The API's parameters for a state (no lanes, no open development). */
  function apiParams(state) {
    var params = new URLSearchParams();
    state.actor.forEach(function (a) { params.append("actor", a); });
    state.category.forEach(function (c) { params.append("category", c); });
    ["from", "to", "q", "as_of"].forEach(function (name) {
      if (state[name]) params.set(name, state[name]);
    });
    return params;
  }

  TimelinePage.prototype.start = function () {
    var self = this;
    this.bind();
    loadLookups().then(function (look) {
      self.look = look;
      self.fillSelects();
      self.stateToForm();
      return self.load();
    }).catch(function (error) {
      setStatus("Could not load the vocabulary and actors: " + error.message, true);
    });
  };

  TimelinePage.prototype.fillSelects = function () {
    var look = this.look;
    var actorSelect = document.getElementById("f-actor");
    var categorySelect = document.getElementById("f-category");
    clear(actorSelect);
    Object.keys(look.actors).map(function (id) { return look.actors[id]; })
      .sort(function (a, b) { return a.name.localeCompare(b.name); })
      .forEach(function (actor) {
        actorSelect.appendChild(el("option", { value: actor.id }, actor.name));
      });
    clear(categorySelect);
    Object.keys(look.vocabulary.categories).forEach(function (name) {
      var info = look.vocabulary.categories[name];
      categorySelect.appendChild(el("option", { value: name, title: info.description },
        humanize(name) + " (" + humanize(info.quad_class) + ")"));
    });
  };

  TimelinePage.prototype.stateToForm = function () {
    var state = this.state;
    var form = this.form;
    // Ids in the URL that the selects do not know yet (e.g. a new actor) are kept as options.
    [["f-actor", state.actor], ["f-category", state.category]].forEach(function (pair) {
      var select = document.getElementById(pair[0]);
      var wanted = {};
      pair[1].forEach(function (v) { wanted[v] = true; });
      Array.prototype.forEach.call(select.options, function (option) {
        option.selected = Boolean(wanted[option.value]);
        delete wanted[option.value];
      });
      Object.keys(wanted).forEach(function (v) {
        select.appendChild(el("option", { value: v, selected: true }, v));
      });
    });
    form.elements.from.value = state.from;
    form.elements.to.value = state.to;
    form.elements.q.value = state.q;
    form.elements.as_of.value = state.as_of;
    Array.prototype.forEach.call(form.querySelectorAll("input[name=lanes]"), function (radio) {
      radio.checked = radio.value === state.lanes;
    });
  };

  TimelinePage.prototype.formToState = function () {
    var form = this.form;
    function selected(id) {
      return Array.prototype.filter.call(document.getElementById(id).options, function (o) { return o.selected; })
        .map(function (o) { return o.value; });
    }
    var lanes = form.querySelector("input[name=lanes]:checked");
    return {
      actor: selected("f-actor"),
      category: selected("f-category"),
      from: form.elements.from.value,
      to: form.elements.to.value,
      q: form.elements.q.value.trim(),
      as_of: form.elements.as_of.value.trim(),
      lanes: lanes ? lanes.value : "actor",
      dev: ""
    };
  };

  TimelinePage.prototype.pushState = function (replace) {
    var query = stateQuery(this.state, true).toString();
    var url = window.location.pathname + (query ? "?" + query : "");
    if (url === window.location.pathname + window.location.search) return;
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
  };

  TimelinePage.prototype.bind = function () {
    var self = this;
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.state = self.formToState();
      self.pushState(false);
      self.closeDetails(false);
      self.view = null;
      self.load();
    });
    document.getElementById("f-clear").addEventListener("click", function () {
      self.state = { actor: [], category: [], from: "", to: "", q: "", as_of: "", lanes: self.state.lanes, dev: "" };
      self.stateToForm();
      self.pushState(false);
      self.closeDetails(false);
      self.view = null;
      self.load();
    });
    Array.prototype.forEach.call(this.form.querySelectorAll("input[name=lanes]"), function (radio) {
      radio.addEventListener("change", function () {
        self.state.lanes = radio.value;
        self.pushState(true);
        self.render();
      });
    });
    window.addEventListener("popstate", function () {
      var previous = self.state;
      self.state = readState();
      self.stateToForm();
      if (apiParams(previous).toString() !== apiParams(self.state).toString()) {
        self.view = null;
        self.load();
      } else {
        self.render();
        self.syncDetails();
      }
    });

    document.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        var how = button.getAttribute("data-zoom");
        if (how === "fit") self.fit();
        else self.zoom(how === "in" ? 0.5 : 2);
      });
    });
    document.querySelectorAll("[data-pan]").forEach(function (button) {
      button.addEventListener("click", function () {
        self.pan(Number(button.getAttribute("data-pan")) * 0.25);
      });
    });

    // Keyboard: + / - zoom, arrows pan, 0 fits, Enter / Space opens, Escape closes.
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      var target = event.target;
      var tag = target && target.tagName;
      var typing = tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || (target && target.isContentEditable);
      if (event.key === "Escape" && !self.details.hidden) {
        event.preventDefault();
        self.closeDetails(true);
        return;
      }
      if (typing) return;
      var inChart = self.chart.contains(target);
      if (event.key === "Enter" || event.key === " ") {
        if (target.classList && target.classList.contains("dev")) {
          event.preventDefault();
          self.openDetails(target.getAttribute("data-id"), target);
        }
        return;   // buttons and links keep their own Enter and Space
      }
      // Zoom around a focused development, else around the middle of the view.
      var around = target.classList && target.classList.contains("dev") ?
        (dayNum(target.getAttribute("data-earliest")) + dayNum(target.getAttribute("data-latest")) + 1) / 2 : undefined;
      if (event.key === "+" || event.key === "=") { event.preventDefault(); self.zoom(0.5, around); }
      else if (event.key === "-" || event.key === "_") { event.preventDefault(); self.zoom(2, around); }
      else if (event.key === "0") { event.preventDefault(); self.fit(); }
      else if (inChart && event.key === "ArrowLeft") { event.preventDefault(); self.pan(-0.1); }
      else if (inChart && event.key === "ArrowRight") { event.preventDefault(); self.pan(0.1); }
    });

    // Ctrl (or ⌘) + wheel and pinch zoom around the pointer; shift + wheel and sideways
    // scrolling pan; a plain wheel scrolls the page as usual.
    this.chart.addEventListener("wheel", function (event) {
      if (!self.view) return;
      if (!event.ctrlKey && !event.metaKey) {
        if (event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
          event.preventDefault();
          var delta = event.shiftKey ? event.deltaY || event.deltaX : event.deltaX;
          self.pan(delta / Math.max(200, self.plotWidth()));
        }
        return;
      }
      event.preventDefault();
      var factor = Math.exp(Math.max(-1, Math.min(1, event.deltaY * 0.002)));
      self.zoom(factor, self.dayAt(event.clientX));
    }, { passive: false });

    // Drag pans; a click without a drag opens a development.
    var drag = null;
    this.chart.addEventListener("pointerdown", function (event) {
      if (!self.view || event.button !== 0) return;
      drag = { x: event.clientX, view: self.view.slice(), moved: false, id: event.pointerId };
    });
    this.chart.addEventListener("pointermove", function (event) {
      if (!drag || drag.id !== event.pointerId) return;
      var dx = event.clientX - drag.x;
      if (!drag.moved && Math.abs(dx) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        self.chart.classList.add("dragging");
        try { self.chart.setPointerCapture(event.pointerId); } catch (ignored) { /* pointer gone */ }
      }
      var perPx = (drag.view[1] - drag.view[0]) / self.plotWidth();
      self.setView(drag.view[0] - dx * perPx, drag.view[1] - dx * perPx);
    });
    function endDrag(event) {
      if (!drag || drag.id !== event.pointerId) return;
      if (drag.moved) {
        self.suppressClick = true;
        setTimeout(function () { self.suppressClick = false; }, 0);
      }
      self.chart.classList.remove("dragging");
      drag = null;
    }
    this.chart.addEventListener("pointerup", endDrag);
    this.chart.addEventListener("pointercancel", endDrag);
    this.chart.addEventListener("click", function (event) {
      if (self.suppressClick) return;
      var mark = event.target.closest && event.target.closest(".dev");
      if (mark) self.openDetails(mark.getAttribute("data-id"), mark);
    });

    // Redraw when the chart's width changes (window size, details panel opened or closed).
    var lastWidth = this.chart.clientWidth;
    function resized() {
      if (self.chart.clientWidth === lastWidth) return;
      lastWidth = self.chart.clientWidth;
      self.scheduleRender();
    }
    if (window.ResizeObserver) new ResizeObserver(resized).observe(this.chart);
    else window.addEventListener("resize", resized);
  };

  TimelinePage.prototype.load = function () {
    var self = this;
    var ticket = ++this.request;
    var params = apiParams(this.state);
    setStatus("Loading the timeline…");
    this.chart.setAttribute("aria-busy", "true");
    return loadTimeline("/api/v1/timeline", params).then(function (answer) {
      if (ticket !== self.request) return;
      self.items = answer.items;
      self.asOf = answer.as_of;
      self.chart.removeAttribute("aria-busy");
      var when = !self.state.as_of ? "the record now (log position " + answer.as_of + ")" :
        /^\d+$/.test(self.state.as_of) ? "the record as it stood at log position " + answer.as_of :
        "the record as it stood at " + fmtMoment(answer.as_of);
      setStatus(answer.items.length + (answer.items.length === 1 ? " development" : " developments") +
        " drawn; " + when + ".");
      if (!self.view) self.fit(true);
      self.render();
      self.renderList();
      self.syncDetails();
    }).catch(function (error) {
      if (ticket !== self.request) return;
      self.chart.removeAttribute("aria-busy");
      self.items = [];
      self.render();
      self.renderList();
      setStatus("Could not load the timeline: " + error.message, true);
    });
  };

  // ---- view (zoom and pan)

  TimelinePage.prototype.plotWidth = function () {
    return Math.max(120, (this.chart.clientWidth || 900) - GUTTER - RIGHT);
  };

  TimelinePage.prototype.dataExtent = function () {
    var lo = Infinity;
    var hi = -Infinity;
    this.items.forEach(function (dev) {
      lo = Math.min(lo, dayNum(dev.earliest));
      hi = Math.max(hi, dayNum(dev.latest) + 1);
    });
    // A range given as a month or year (the API takes those too) has no day here:
    // the developments found set the view then.
    var from = dayNum(this.state.from);
    var to = dayNum(this.state.to) + 1;
    if (isFinite(from)) lo = Math.max(lo, from);
    if (isFinite(to)) hi = Math.min(hi, to);
    if (!isFinite(lo) || !isFinite(hi) || hi <= lo) {
      var today = dayNum(todayIso());
      lo = isFinite(from) ? from : today - 365;
      hi = isFinite(to) ? to : today + 1;
    }
    return [lo, hi];
  };

  TimelinePage.prototype.fit = function (quiet) {
    var extent = this.dataExtent();
    var pad = Math.max(2, (extent[1] - extent[0]) * 0.03);
    this.setView(extent[0] - pad, extent[1] + pad, quiet);
  };

  TimelinePage.prototype.setView = function (lo, hi, quiet) {
    var span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, hi - lo));
    var mid = (lo + hi) / 2;
    this.view = [mid - span / 2, mid + span / 2];
    if (!quiet) this.scheduleRender();
  };

  TimelinePage.prototype.scheduleRender = function () {
    var self = this;
    if (this.frame) return;
    this.frame = requestAnimationFrame(function () {
      self.frame = null;
      self.render();
    });
  };

  TimelinePage.prototype.zoom = function (factor, around) {
    if (!this.view) return;
    var lo = this.view[0];
    var hi = this.view[1];
    var centre = around === undefined || isNaN(around) ? (lo + hi) / 2 : around;
    var span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, (hi - lo) * factor));
    var share = (centre - lo) / (hi - lo);
    this.view = [centre - share * span, centre - share * span + span];
    this.scheduleRender();
  };

  TimelinePage.prototype.pan = function (share) {
    if (!this.view) return;
    var shift = (this.view[1] - this.view[0]) * share;
    this.view = [this.view[0] + shift, this.view[1] + shift];
    this.scheduleRender();
  };

  TimelinePage.prototype.dayAt = function (clientX) {
    var box = this.chart.getBoundingClientRect();
    var x = clientX - box.left - GUTTER;
    return this.view[0] + (x / this.plotWidth()) * (this.view[1] - this.view[0]);
  };

  // ---- lanes

  TimelinePage.prototype.lanes = function () {
    var look = this.look;
    var items = this.items;
    var lanes = [];
    if (this.state.lanes === "category") {
      var byCategory = {};
      items.forEach(function (dev) {
        (byCategory[dev.category] = byCategory[dev.category] || []).push(dev);
      });
      var order = look ? Object.keys(look.vocabulary.categories) : Object.keys(byCategory).sort();
      order.forEach(function (name) {
        if (!byCategory[name]) return;
        var info = look && look.vocabulary.categories[name];
        lanes.push({ key: "category:" + name, label: humanize(name),
                     note: info ? humanize(info.quad_class) + ", weight " + info.weight : "",
                     items: byCategory[name] });
      });
      return lanes;
    }
    // One lane per actor: the actors filtered on, or else the most involved ones, and a
    // lane for developments involving none of those.
    var counts = {};
    items.forEach(function (dev) {
      uniqueActors(dev).forEach(function (id) { counts[id] = (counts[id] || 0) + 1; });
    });
    var chosen = this.state.actor.length ? this.state.actor.slice() :
      Object.keys(counts).sort(function (a, b) {
        return counts[b] - counts[a] || actorName(a, look).localeCompare(actorName(b, look));
      }).slice(0, TOP_ACTOR_LANES);
    var inLane = {};
    chosen.forEach(function (id) { inLane[id] = []; });
    var rest = [];
    items.forEach(function (dev) {
      var placed = false;
      uniqueActors(dev).forEach(function (id) {
        if (inLane[id]) { inLane[id].push(dev); placed = true; }
      });
      if (!placed) rest.push(dev);
    });
    chosen.forEach(function (id) {
      lanes.push({ key: "actor:" + id, label: actorName(id, look), href: actorHref(id),
                   note: plural(inLane[id].length, "development"), items: inLane[id] });
    });
    if (rest.length) {
      lanes.push({ key: "actor:*", label: "other actors", note: plural(rest.length, "development"), items: rest });
    }
    return lanes;
  };

  function plural(count, noun) {
    return count + " " + noun + (count === 1 ? "" : "s");
  }

  function uniqueActors(dev) {
    var seen = {};
    var ids = [];
    (dev.actors || []).forEach(function (part) {
      if (!seen[part.actor]) { seen[part.actor] = true; ids.push(part.actor); }
    });
    return ids;
  }

  // ---- drawing

  function truncate(text, chars) {
    text = String(text);
    return text.length > chars ? text.slice(0, chars - 1) + "…" : text;
  }

  function ariaLabel(dev, look) {
    return dev.title + ". " + describeWhen(dev) + ". Certainty: " + dev.certainty + ". Category: " +
      humanize(dev.category) + " (" + humanize(quadOf(dev, look)) + "). Actors: " +
      uniqueActors(dev).map(function (id) { return actorName(id, look); }).join(", ") + ".";
  }

  TimelinePage.prototype.render = function () {
    if (!this.view) return;
    var self = this;
    var look = this.look;
    var focused = document.activeElement;
    var focusKey = focused && focused.classList && focused.classList.contains("dev") ?
      focused.getAttribute("data-id") + "|" + focused.getAttribute("data-lane") : null;

    var width = GUTTER + this.plotWidth() + RIGHT;
    var plotW = this.plotWidth();
    var v0 = this.view[0];
    var v1 = this.view[1];
    var scale = plotW / (v1 - v0);
    function x(day) { return (day - v0) * scale; }

    // Pack each lane's visible marks (and their labels) into rows.
    var lanes = this.lanes().map(function (lane) {
      var marks = [];
      lane.items.forEach(function (dev) {
        var kind = dateKind(dev);
        var start = dayNum(dev.earliest);
        var end = dayNum(dev.latest) + 1;
        var x0 = kind === "point" ? x(start + 0.5) - 6 : x(start);
        var x1 = kind === "point" ? x(start + 0.5) + 6 : x(end);
        if (kind !== "point" && x1 - x0 < 10) {   // keep a tiny window visible and clickable
          var middle = (x0 + x1) / 2;
          x0 = middle - 5;
          x1 = middle + 5;
        }
        if (x1 < -40 || x0 > plotW + 40) return;
        // Draw only what can be seen: a window of decades at a zoom of days would be
        // millions of pixels wide (and slow to fill with its hatching).
        x0 = Math.max(x0, -60);
        x1 = Math.min(x1, plotW + 60);
        var text = (kind === "fuzzy" ? "≈ " : "") + truncate(dev.title, LABEL_CHARS);
        var labelW = text.length * CHAR_PX;
        var visible0 = Math.max(x0, 0);
        var roomInside = kind !== "point" && Math.min(x1, plotW) - visible0 >= labelW + 12;
        var roomAfter = x1 + 5 + labelW <= plotW;
        var roomBefore = x0 - 5 - labelW >= 0;
        // The label goes inside a wide hatched window; else after the mark, or before it
        // near the right edge; inside a solid bar only when there is no room around it.
        var side = roomInside && kind === "fuzzy" ? "inside" : roomAfter ? "after" : roomBefore ? "before" :
          roomInside ? "inside" : "after";
        if (side === "after" && !roomAfter) {   // no room anywhere: shorten the label to what fits
          var fits = Math.floor((plotW - x1 - 5) / CHAR_PX);
          if (fits >= 8) {
            text = truncate(text, fits);
            labelW = text.length * CHAR_PX;
          }
        }
        var labelX = side === "inside" ? visible0 + 6 : side === "before" ? x0 - 5 : x1 + 5;
        var extent = side === "inside" ? [x0, x1] : side === "before" ? [x0 - 5 - labelW, x1] : [x0, x1 + 5 + labelW];
        marks.push({ dev: dev, kind: kind, x0: x0, x1: x1, text: text, labelX: labelX, side: side,
                     extent: extent });
      });
      // Marks stay in the API's date order (earliest, latest) in the DOM, so Tab follows
      // time; rows come from a greedy packing by extent (mark and label).
      var rows = [];
      var packing = marks.slice().sort(function (a, b) { return a.extent[0] - b.extent[0]; });
      packing.forEach(function (mark) {
        var row = 0;
        while (row < rows.length && rows[row] > mark.extent[0] - 4) row++;
        rows[row] = mark.extent[1];
        mark.row = row;
      });
      var rowEnds = rows;
      lane.marks = marks;
      lane.rows = Math.max(1, rowEnds.length);
      return lane;
    });

    var y = AXIS;
    lanes.forEach(function (lane) {
      lane.y = y;
      lane.height = lane.rows * ROW + 2 * LANE_PAD;
      y += lane.height;
    });
    var height = Math.max(y + 8, AXIS + 60);

    var root = svg("svg", {
      "class": "timeline-svg", width: width, height: height, viewBox: "0 0 " + width + " " + height,
      role: "presentation", "data-view-from": isoDay(v0), "data-view-to": isoDay(v1)
    });
    var clipId = "plot-clip";
    var defs = svg("defs");
    var clip = svg("clipPath", { id: clipId });
    clip.appendChild(svg("rect", { x: -2, y: 0, width: plotW + 4, height: height }));
    defs.appendChild(clip);
    root.appendChild(defs);

    // Lane backgrounds and labels.
    var laneLayer = svg("g", { "class": "lanes" });
    lanes.forEach(function (lane, index) {
      laneLayer.appendChild(svg("rect", {
        "class": "lane-bg" + (index % 2 ? " odd" : ""), x: 0, y: lane.y, width: width, height: lane.height
      }));
      var label = svg("text", { "class": "lane-label", x: 10, y: lane.y + LANE_PAD + 15 },
        truncate(lane.label, 22));
      var note = svg("text", { "class": "lane-note", x: 10, y: lane.y + LANE_PAD + 30 }, lane.note);
      if (lane.href) {
        var link = svg("a", { href: lane.href, "class": "lane-link", "aria-label": "Actor page: " + lane.label });
        link.appendChild(label);
        laneLayer.appendChild(link);
      } else {
        laneLayer.appendChild(label);
      }
      if (lane.height >= 40) laneLayer.appendChild(note);
    });
    root.appendChild(laneLayer);

    // Axis and grid.
    var plot = svg("g", { "class": "plot", transform: "translate(" + GUTTER + ",0)" });
    var grid = svg("g", { "class": "axis", "clip-path": "url(#" + clipId + ")" });
    ticks(v0, v1, plotW).forEach(function (tick) {
      var tx = x(tick.day);
      grid.appendChild(svg("line", { "class": "grid" + (tick.major ? " major" : ""), x1: tx, x2: tx, y1: AXIS - 6, y2: height }));
      grid.appendChild(svg("text", { "class": "tick", x: tx + 3, y: AXIS - 12 }, tick.label));
    });
    plot.appendChild(grid);
    var today = dayNum(todayIso());
    if (today > v0 && today < v1) {
      plot.appendChild(svg("line", { "class": "today", x1: x(today), x2: x(today), y1: AXIS - 6, y2: height }));
    }

    // Marks, lane by lane, each in date order (so DOM order is date order within a lane).
    var marksLayer = svg("g", { "class": "marks", "clip-path": "url(#" + clipId + ")" });
    lanes.forEach(function (lane) {
      var laneGroup = svg("g", { "class": "lane", "data-lane": lane.key, role: "list", "aria-label": "Lane " + lane.label });
      lane.marks.forEach(function (mark) {
        laneGroup.appendChild(self.drawMark(mark, lane, lane.y + LANE_PAD + mark.row * ROW + ROW / 2));
      });
      marksLayer.appendChild(laneGroup);
    });
    plot.appendChild(marksLayer);
    root.appendChild(plot);

    clear(this.chart);
    if (!lanes.length) {
      this.chart.appendChild(el("p", { "class": "empty" }, "No developments match these filters."));
    }
    this.chart.appendChild(root);

    var range = document.getElementById("view-range");
    if (range) range.textContent = "Showing " + fmtDay(Math.floor(v0)) + " – " + fmtDay(Math.floor(v1));

    if (this.openId) this.markOpen(this.openId);
    if (focusKey) {
      var parts = focusKey.split("|");
      var again = this.chart.querySelector('.dev[data-id="' + cssEscape(parts[0]) + '"][data-lane="' + cssEscape(parts[1]) + '"]') ||
        this.chart.querySelector('.dev[data-id="' + cssEscape(parts[0]) + '"]');
      if (again) again.focus({ preventScroll: true });
      else this.chart.focus({ preventScroll: true });
    }
  };

  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
  }

  TimelinePage.prototype.drawMark = function (mark, lane, cy) {
    var dev = mark.dev;
    var quad = quadOf(dev, this.look);
    var colours = QUAD_COLOURS[quad] || QUAD_COLOURS.neutral;
    var weak = Boolean(WEAK[dev.certainty]);
    var group = svg("g", {
      "class": "dev " + mark.kind + " q-" + quad + " cert-" + dev.certainty + (weak ? " cert-weak" : ""),
      tabindex: 0, role: "button", focusable: "true",
      "aria-label": ariaLabel(dev, this.look),
      "data-id": dev.id, "data-earliest": dev.earliest, "data-latest": dev.latest, "data-when": dev.when,
      "data-precision": dev.precision, "data-certainty": dev.certainty, "data-category": dev.category,
      "data-lane": lane.key
    });
    group.appendChild(svg("title", null, dev.title + " — " + dev.when + " (" + describeWhen(dev) + "), " + dev.certainty));
    var shape;
    var ring;
    if (mark.kind === "point") {
      var cx = (mark.x0 + mark.x1) / 2;
      ring = svg("circle", { "class": "ring", cx: cx, cy: cy, r: 10 });
      shape = svg("circle", { "class": "shape", cx: cx, cy: cy, r: 6, fill: colours[0], stroke: colours[1] });
    } else if (mark.kind === "bar") {
      ring = svg("rect", { "class": "ring", x: mark.x0 - 4, y: cy - 9, width: mark.x1 - mark.x0 + 8, height: 18, rx: 6 });
      shape = svg("rect", { "class": "shape", x: mark.x0, y: cy - 5, width: mark.x1 - mark.x0, height: 10, rx: 3,
                            fill: colours[0], stroke: colours[1] });
    } else {
      ring = svg("rect", { "class": "ring", x: mark.x0 - 4, y: cy - 12, width: mark.x1 - mark.x0 + 8, height: 24, rx: 4 });
      shape = svg("rect", { "class": "shape", x: mark.x0, y: cy - 8, width: mark.x1 - mark.x0, height: 16, rx: 2,
                            fill: "url(#hatch-" + quad + ")", stroke: colours[0] });
    }
    group.appendChild(ring);
    group.appendChild(shape);
    var gx = mark.kind === "point" ? (mark.x0 + mark.x1) / 2 : mark.x0 + 8;
    if (dev.certainty === "disputed") {
      group.appendChild(svg("text", { "class": "glyph", x: gx, y: cy + 4 }, "?"));
    } else if (dev.certainty === "denied") {
      group.appendChild(svg("line", { "class": "strike", x1: gx - 8, y1: cy + 8, x2: gx + 8, y2: cy - 8 }));
    }
    var label = svg("text", { "class": "label " + mark.side, x: mark.labelX, y: cy + 4,
                              "text-anchor": mark.side === "before" ? "end" : null }, mark.text);
    if (dev.language) label.setAttribute("lang", dev.language);
    group.appendChild(label);
    return group;
  };

  /** Axis ticks for a span of days: days, weeks, months, years or decades. */
  function ticks(v0, v1, plotW) {
    var pxPerDay = plotW / (v1 - v0);
    var units = [
      ["day", 1], ["day", 2], ["week", 1], ["month", 1], ["month", 3], ["month", 6],
      ["year", 1], ["year", 2], ["year", 5], ["year", 10], ["year", 20], ["year", 50], ["year", 100]
    ];
    var approx = { day: 1, week: 7, month: 30.44, year: 365.25 };
    var unit = units[units.length - 1];
    for (var i = 0; i < units.length; i++) {
      if (approx[units[i][0]] * units[i][1] * pxPerDay >= 78) { unit = units[i]; break; }
    }
    var kind = unit[0];
    var step = unit[1];
    var out = [];
    var first = dayDate(v0);
    if (kind === "day" || kind === "week") {
      var start = Math.ceil(v0);
      if (kind === "week") while (((start % 7) + 7 + 3) % 7 !== 0) start++;   // Mondays
      else if (step > 1) start += ((step - (start % step)) % step + step) % step;
      var every = kind === "week" ? 7 : step;
      for (var d = start; d <= v1 && out.length < 400; d += every) {
        var date = dayDate(d);
        var newYear = date.getUTCMonth() === 0 && date.getUTCDate() <= every;
        out.push({ day: d, major: date.getUTCDate() === 1,
                   label: date.getUTCDate() + " " + MONTHS[date.getUTCMonth()] +
                     (out.length === 0 || newYear ? " " + date.getUTCFullYear() : "") });
      }
    } else if (kind === "month") {
      var y = first.getUTCFullYear();
      var m = first.getUTCMonth();
      m = Math.ceil(m / step) * step;
      for (var guard = 0; guard < 400; guard++) {
        var md = new Date(0);
        md.setUTCFullYear(y, m, 1);
        var dm = Math.round(md.getTime() / DAY);
        if (dm > v1) break;
        if (dm >= v0) {
          out.push({ day: dm, major: md.getUTCMonth() === 0,
                     label: MONTHS[md.getUTCMonth()] + (out.length === 0 || md.getUTCMonth() === 0 ? " " + md.getUTCFullYear() : "") });
        }
        m += step;
      }
    } else {
      var year = Math.floor(first.getUTCFullYear() / step) * step;
      for (var g = 0; g < 400; g++, year += step) {
        var yd = new Date(0);
        yd.setUTCFullYear(year, 0, 1);
        var dy = Math.round(yd.getTime() / DAY);
        if (dy > v1) break;
        if (dy >= v0) out.push({ day: dy, major: year % (step * 5) === 0, label: String(year) });
      }
    }
    return out;
  }

  // ---- the list (the same developments, as text)

  TimelinePage.prototype.renderList = function () {
    var self = this;
    clear(this.list);
    this.items.forEach(function (dev) {
      var item = el("li", { "data-id": dev.id });
      var button = el("button", { type: "button", "class": "linkish", "data-id": dev.id });
      append(button, el("span", { "class": "when" }, dev.when), " ",
        el("span", { lang: dev.language || null }, dev.title));
      button.addEventListener("click", function () { self.openDetails(dev.id, button); });
      append(item, button, " ", el("span", { "class": "muted" }, dev.certainty + ", " + humanize(dev.category)));
      self.list.appendChild(item);
    });
  };

  // ---- details of one development

  TimelinePage.prototype.syncDetails = function () {
    if (this.state.dev && this.state.dev !== this.openId) this.openDetails(this.state.dev, null, true);
    else if (!this.state.dev && this.openId) this.closeDetails(false, true);
  };

  TimelinePage.prototype.markOpen = function (id) {
    Array.prototype.forEach.call(this.chart.querySelectorAll(".dev.open"), function (node) {
      node.classList.remove("open");
    });
    if (!id) return;
    Array.prototype.forEach.call(this.chart.querySelectorAll('.dev[data-id="' + cssEscape(id) + '"]'), function (node) {
      node.classList.add("open");
    });
  };

  TimelinePage.prototype.openDetails = function (id, opener, fromUrl) {
    var self = this;
    if (!id) return;
    this.openId = id;
    this.opener = opener || null;
    this.markOpen(id);
    if (!fromUrl) {
      this.state.dev = id;
      this.pushState(false);
    }
    var panel = this.details;
    panel.hidden = false;
    clear(panel);
    panel.appendChild(el("p", { "class": "muted" }, "Loading the development…"));
    var query = this.state.as_of ? "?as_of=" + encodeURIComponent(this.state.as_of) : "";
    var base = "/api/v1/developments/" + encodeURIComponent(id);
    Promise.all([getJSON(base + query), getJSON(base + "/history"), loadLookups()]).then(function (answers) {
      if (self.openId !== id) return;
      renderDetails(panel, answers[0], answers[1].history, answers[2], function () { self.closeDetails(true); });
      if (!fromUrl) panel.focus({ preventScroll: false });
    }).catch(function (error) {
      if (self.openId !== id) return;
      clear(panel);
      append(panel, closeButton(function () { self.closeDetails(true); }),
        el("p", { "class": "error", role: "alert" }, "Could not load development " + id + ": " + error.message));
    });
  };

  TimelinePage.prototype.closeDetails = function (restoreFocus, fromUrl) {
    var opener = this.opener;
    this.openId = null;
    this.opener = null;
    this.details.hidden = true;
    clear(this.details);
    this.markOpen(null);
    if (!fromUrl && this.state.dev) {
      this.state.dev = "";
      this.pushState(false);
    }
    if (restoreFocus) {
      if (opener && document.body.contains(opener)) opener.focus();
      else this.chart.focus();
    }
  };

  function closeButton(onClose) {
    var button = el("button", { type: "button", "class": "close", "aria-label": "Close the details" }, "×");
    button.addEventListener("click", onClose);
    return button;
  }

  function dlRow(dl, term, value) {
    if (value === null || value === undefined || value === "") return;
    dl.appendChild(el("dt", null, term));
    var dd = el("dd");
    if (typeof value === "string" || typeof value === "number") dd.textContent = String(value);
    else dd.appendChild(value);
    dl.appendChild(dd);
  }

  function renderDetails(panel, dev, history, look, onClose) {
    clear(panel);
    panel.appendChild(closeButton(onClose));
    var title = el("h2", { id: "details-title", lang: dev.language || null }, dev.title);
    panel.appendChild(title);
    var last = (history || []).filter(function (e) { return e.type === "retracted" || e.type === "restored"; }).pop();
    if (dev.retracted) {
      panel.appendChild(el("p", { "class": "badge retracted" },
        "Retracted: this development is no longer part of the current record (see its history)."));
    } else if (last && last.type === "retracted") {
      panel.appendChild(el("p", { "class": "badge retracted" },
        "Retracted later (log position " + last.position + "): shown as the record stood then; see its history."));
    }
    var kind = dateKind(dev);
    var when = el("span");
    append(when, el("code", null, dev.when), " — ", el("span", { "class": "window-" + kind }, describeWhen(dev)));
    var windowText = "earliest " + dev.earliest + ", latest " + dev.latest + ", precision " + dev.precision +
      (dev.qualified ? ", qualified (~ or ?)" : "");
    var info = look.vocabulary.categories[dev.category];
    var certainty = el("span", { "class": "certainty cert-" + dev.certainty }, dev.certainty);
    var dl = el("dl", { "class": "facts" });
    dlRow(dl, "When", when);
    dlRow(dl, "Window", windowText);
    dlRow(dl, "Certainty", certainty);
    dlRow(dl, "Category", humanize(dev.category) + (info ? " — " + humanize(info.quad_class) + ", weight " + info.weight : ""));
    if (dev.location && (dev.location.name || dev.location.country)) {
      dlRow(dl, "Where", [dev.location.name, dev.location.country].filter(Boolean).join(", "));
    }
    if (dev.tags && dev.tags.length) dlRow(dl, "Tags", dev.tags.join(", "));
    dlRow(dl, "Version", "v" + dev.version + (dev.recorded_by ? ", recorded by " + dev.recorded_by : ""));
    panel.appendChild(dl);
    if (dev.summary) panel.appendChild(el("p", { "class": "summary", lang: dev.language || null }, dev.summary));

    panel.appendChild(el("h3", null, "Actors"));
    var actors = el("ul", { "class": "actors" });
    (dev.actors || []).forEach(function (part) {
      var li = el("li");
      append(li, el("a", { href: actorHref(part.actor) }, actorName(part.actor, look)), " — " + part.role);
      actors.appendChild(li);
    });
    panel.appendChild(actors);

    if (dev.effects && dev.effects.length) {
      panel.appendChild(el("h3", null, "What it makes true"));
      var effects = el("ul", { "class": "effects" });
      dev.effects.forEach(function (effect) {
        var li = el("li");
        append(li, el("a", { href: actorHref(effect.actor) }, actorName(effect.actor, look)), ": ",
          el("code", null, effect.attribute), " = ", el("code", null, effect.value === null ? "(ended)" : formatValue(effect.value)),
          " from " + fmtDay(dev.earliest));
        effects.appendChild(li);
      });
      panel.appendChild(effects);
    }

    panel.appendChild(el("h3", null, "Sources (" + (dev.sources || []).length + ")"));
    var sources = el("ol", { "class": "sources" });
    (dev.sources || []).forEach(function (source) {
      sources.appendChild(renderSource(source));
    });
    panel.appendChild(sources);

    panel.appendChild(el("h3", null, "History"));
    panel.appendChild(renderHistory(history || [], look));
  }

  function renderSource(source) {
    var li = el("li", { "class": "source" });
    var url = safeUrl(source.url);
    if (source.quote) {
      var quote = el("blockquote", { lang: source.language || null, cite: url }, source.quote);
      li.appendChild(quote);
    }
    var cite = el("p", { "class": "citation" });
    var parts = [source.title, source.author, source.publisher, source.published && "published " + source.published,
                 source.locator].filter(Boolean);
    append(cite, "— ");
    if (source.citation) append(cite, el("cite", null, source.citation));
    if (parts.length) append(cite, (source.citation ? "; " : "") + parts.join(", "));
    if (url) append(cite, " ", el("a", { href: url, rel: "noopener noreferrer" }, "link"));
    var archive = safeUrl(source.archive_url);
    if (archive) append(cite, " ", el("a", { href: archive, rel: "noopener noreferrer" }, "archived copy"));
    if (source.retrieved) append(cite, " (retrieved " + source.retrieved + ")");
    li.appendChild(cite);
    return li;
  }

  function formatValue(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.length && value[0] && typeof value[0] === "object" && "actor" in value[0]) {
      return value.map(function (v) { return v.actor + (v.role ? " (" + v.role + ")" : "") +
        (v.attribute ? " " + v.attribute + " = " + JSON.stringify(v.value) : ""); }).join(", ");
    }
    if (Array.isArray(value) && value.every(function (v) { return typeof v === "string"; })) return value.join(", ");
    return JSON.stringify(value);
  }

  var HISTORY_WORDS = {
    recorded: "recorded", corrected: "corrected", source_added: "source added",
    retracted: "retracted", restored: "restored"
  };

  function renderHistory(history, look) {
    var list = el("ol", { "class": "history" });
    var state = {};
    history.forEach(function (entry) {
      var li = el("li", { "class": "history-entry type-" + entry.type, "data-type": entry.type });
      var head = el("p", { "class": "history-head" });
      append(head, el("strong", null, "v" + entry.version + " " + (HISTORY_WORDS[entry.type] || entry.type)),
        " — " + fmtMoment(entry.recorded_at) + " by " + (entry.recorded_by || "?") + " (log position " + entry.position + ")");
      li.appendChild(head);
      if (entry.reason) li.appendChild(el("p", { "class": "reason" }, "Why: " + entry.reason));
      if (entry.type === "recorded" && entry.stated) {
        state = Object.assign({}, entry.stated);
        li.appendChild(el("p", { "class": "changed" }, "First recorded as: “" + entry.stated.title + "”, " +
          entry.stated.when + ", " + entry.stated.certainty + ", " + humanize(entry.stated.category) + ", " +
          (entry.stated.sources || []).length + " source(s)."));
      } else if (entry.type === "corrected" && entry.changes) {
        var changes = el("ul", { "class": "changes" });
        Object.keys(entry.changes).forEach(function (field) {
          var item = el("li");
          append(item, el("code", null, field), ": ",
            el("del", null, formatValue(state[field])), " → ", el("ins", null, formatValue(entry.changes[field])));
          changes.appendChild(item);
          state[field] = entry.changes[field];
        });
        li.appendChild(changes);
        if (entry.sources && entry.sources.length) {
          var added = el("ol", { "class": "sources" });
          entry.sources.forEach(function (source) { added.appendChild(renderSource(source)); });
          append(li, el("p", null, "With new sources:"), added);
        }
      } else if (entry.type === "source_added" && entry.source) {
        var one = el("ol", { "class": "sources" });
        one.appendChild(renderSource(entry.source));
        li.appendChild(one);
      } else if (entry.type === "retracted") {
        li.appendChild(el("p", { "class": "changed" }, "Taken out of the current record (it stays in history)."));
      } else if (entry.type === "restored") {
        li.appendChild(el("p", { "class": "changed" }, "Back in the current record."));
      }
      list.appendChild(li);
    });
    return list;
  }

  // ---------------------------------------------------------------- the actor page

  function ActorPage(slug) {
    this.slug = slug;
    this.form = document.getElementById("state-form");
    var params = new URLSearchParams(window.location.search);
    this.at = /^\d{4}-\d\d-\d\d$/.test(params.get("at") || "") ? params.get("at") : todayIso();
    this.asOf = params.get("as_of") || "";
    this.request = 0;
    this.timeline = null;
    this.look = null;
  }

  ActorPage.prototype.start = function () {
    var self = this;
    var atInput = document.getElementById("at");
    var asOfInput = document.getElementById("as-of");
    atInput.value = this.at;
    asOfInput.value = this.asOf;
    atInput.addEventListener("change", function () {
      if (!atInput.value) return;
      self.at = atInput.value;
      self.syncUrl();
      self.loadState();
    });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (atInput.value) self.at = atInput.value;
      var asOf = asOfInput.value.trim();
      var recordChanged = asOf !== self.asOf;
      self.asOf = asOf;
      self.syncUrl();
      if (recordChanged) self.loadAll();
      else self.loadState();
    });
    this.loadAll();
  };

  ActorPage.prototype.syncUrl = function () {
    var params = new URLSearchParams();
    params.set("at", this.at);
    if (this.asOf) params.set("as_of", this.asOf);
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
  };

  ActorPage.prototype.recordQuery = function () {
    return this.asOf ? "?as_of=" + encodeURIComponent(this.asOf) : "";
  };

  ActorPage.prototype.loadAll = function () {
    var self = this;
    var slug = encodeURIComponent(this.slug);
    var params = new URLSearchParams();
    if (this.asOf) params.set("as_of", this.asOf);
    setStatus("Loading…");
    return Promise.all([
      loadLookups(), getJSON("/api/v1/actors/" + slug + this.recordQuery()),
      loadTimeline("/api/v1/actors/" + slug + "/timeline", params)
    ]).then(function (answers) {
      self.look = answers[0];
      self.renderProfile(answers[1]);
      self.timeline = answers[2].items;
      self.renderDevelopments();
      return self.loadState();
    }).catch(function (error) {
      setStatus("Could not load this actor: " + error.message, true);
    });
  };

  ActorPage.prototype.loadState = function () {
    var self = this;
    var ticket = ++this.request;
    var params = new URLSearchParams();
    params.set("at", this.at);
    if (this.asOf) params.set("as_of", this.asOf);
    setStatus("Loading the state on " + fmtDay(this.at) + "…");
    return getJSON("/api/v1/actors/" + encodeURIComponent(this.slug) + "/state?" + params.toString())
      .then(function (state) {
        if (ticket !== self.request) return;
        self.renderAttributes(state);
        self.renderRelations(state);
        self.renderInvolvement(state.involvement);
        setStatus("State on " + fmtDay(state.at) + ", " + (self.asOf ? "as the record stood at " + self.asOf : "as the record stands now") + ".");
      }).catch(function (error) {
        if (ticket !== self.request) return;
        setStatus("Could not load the state: " + error.message, true);
      });
  };

  ActorPage.prototype.renderProfile = function (profile) {
    document.getElementById("actor-name").textContent = profile.name;
    document.getElementById("p-kind").textContent = humanize(profile.kind || "—");
    document.getElementById("p-description").textContent = profile.description || "—";
    document.getElementById("p-aliases").textContent = (profile.aliases || []).join(", ") || "—";
    var wikidata = document.getElementById("p-wikidata");
    clear(wikidata);
    if (profile.wikidata && /^Q\d+$/.test(profile.wikidata)) {
      wikidata.appendChild(el("a", { href: "https://www.wikidata.org/wiki/" + profile.wikidata, rel: "noopener noreferrer" }, profile.wikidata));
    } else {
      wikidata.textContent = profile.wikidata || "—";
    }
    var names = document.getElementById("p-names");
    clear(names);
    var display = null;
    try { display = new Intl.DisplayNames(["en"], { type: "language" }); } catch (ignored) { display = null; }
    Object.keys(profile.names || {}).forEach(function (language) {
      var row = el("tr");
      var languageName = language;
      try { if (display) languageName = display.of(language) + " (" + language + ")"; } catch (ignored) { /* odd tag */ }
      append(row, el("th", { scope: "row" }, languageName), el("td", { lang: language }, profile.names[language]));
      names.appendChild(row);
    });
  };

  ActorPage.prototype.renderAttributes = function (state) {
    var body = document.getElementById("attributes");
    clear(body);
    var names = Object.keys(state.attributes || {}).sort();
    if (!names.length) {
      var empty = el("tr");
      empty.appendChild(el("td", { colspan: 3, "class": "muted" }, "No attributes on record for " + fmtDay(state.at) + "."));
      body.appendChild(empty);
      return;
    }
    names.forEach(function (name) {
      var attribute = state.attributes[name];
      var row = el("tr", { "data-attribute": name });
      var since = el("td");
      append(since, el("code", null, attribute.when), " ",
        el("a", { href: devHref(attribute.development) }, attribute.title));
      append(row, append(el("th", { scope: "row" }), el("code", null, name)),
        el("td", { "class": "value" }, formatValue(attribute.value)), since);
      body.appendChild(row);
    });
  };

  /** Cumulative cooperation score per counterpart, from the actor's timeline. */
  ActorPage.prototype.scoreSeries = function () {
    var slug = this.slug;
    var weights = this.look.vocabulary.categories;
    var series = {};
    (this.timeline || []).forEach(function (dev) {
      var weight = weights[dev.category] ? weights[dev.category].weight : 0;
      uniqueActors(dev).forEach(function (other) {
        if (other === slug) return;
        (series[other] = series[other] || []).push({ day: dayNum(dev.earliest), iso: dev.earliest, weight: weight,
                                                      title: dev.title, id: dev.id });
      });
    });
    Object.keys(series).forEach(function (other) {
      var points = series[other].sort(function (a, b) { return a.day - b.day; });
      var merged = [];
      var total = 0;
      points.forEach(function (p) {
        total += p.weight;
        var last = merged[merged.length - 1];
        if (last && last.day === p.day) { last.total = total; last.titles.push(p.title); }
        else merged.push({ day: p.day, iso: p.iso, total: total, titles: [p.title] });
      });
      series[other] = merged;
    });
    return series;
  };

  ActorPage.prototype.renderRelations = function (state) {
    var self = this;
    var list = document.getElementById("relations");
    clear(list);
    var series = this.scoreSeries();
    var atDay = dayNum(state.at);
    var lo = Infinity;
    var hi = atDay;
    Object.keys(series).forEach(function (other) {
      series[other].forEach(function (p) { lo = Math.min(lo, p.day); hi = Math.max(hi, p.day); });
    });
    if (!isFinite(lo)) lo = atDay - 365;
    var relations = state.relations || {};
    var others = Object.keys(relations).sort(function (a, b) {
      return relations[b].developments - relations[a].developments || a.localeCompare(b);
    });
    if (!others.length) {
      list.appendChild(el("li", { "class": "muted" }, "No shared developments on record up to " + fmtDay(state.at) + "."));
      return;
    }
    others.forEach(function (other) {
      var relation = relations[other];
      var li = el("li", { "class": "relation", "data-actor": other });
      var head = el("p", { "class": "relation-head" });
      append(head, el("a", { href: actorHref(other) }, actorName(other, self.look)), " — " +
        relation.developments + " shared development" + (relation.developments === 1 ? "" : "s") +
        ", score " + relation.score + ", trend " + relation.trend);
      li.appendChild(head);
      var counts = Object.keys(relation.counts).filter(function (q) { return relation.counts[q]; })
        .map(function (q) { return humanize(q) + " " + relation.counts[q]; }).join(", ");
      li.appendChild(el("p", { "class": "muted" }, counts));
      li.appendChild(scoreChart(series[other] || [], lo, hi, atDay, actorName(other, self.look)));
      if (relation.last) {
        var last = el("p", { "class": "muted" });
        append(last, "Last: ", el("a", { href: devHref(relation.last.development) }, relation.last.title),
          " (" + relation.last.when + ")");
        li.appendChild(last);
      }
      list.appendChild(li);
    });
  };

  function scoreChart(points, lo, hi, atDay, name) {
    var W = 320;
    var H = 84;
    var L = 34;
    var R = 8;
    var T = 8;
    var B = 18;
    var upTo = points.filter(function (p) { return p.day <= atDay; });
    var scoreAt = upTo.length ? upTo[upTo.length - 1].total : 0;
    var values = points.map(function (p) { return p.total; }).concat([0]);
    var yMin = Math.min.apply(null, values);
    var yMax = Math.max.apply(null, values);
    if (yMax - yMin < 1) { yMax += 1; yMin -= 1; }
    var span = Math.max(1, hi - lo);
    var pad = span * 0.04;
    function x(day) { return L + (day - lo + pad) / (span + 2 * pad) * (W - L - R); }
    function y(v) { return T + (yMax - v) / (yMax - yMin) * (H - T - B); }
    var root = svg("svg", {
      "class": "score-chart", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "Cooperation score with " + name + " over time: " + scoreAt + " on " + fmtDay(atDay),
      "data-score-at": scoreAt
    });
    root.appendChild(svg("line", { "class": "zero", x1: L, x2: W - R, y1: y(0), y2: y(0) }));
    if (y(0) - y(yMax) > 12) root.appendChild(svg("text", { "class": "axis-label", x: L - 4, y: y(yMax) + 8, "text-anchor": "end" }, String(yMax)));
    root.appendChild(svg("text", { "class": "axis-label", x: L - 4, y: y(0) + 3, "text-anchor": "end" }, "0"));
    if (y(yMin) - y(0) > 12) root.appendChild(svg("text", { "class": "axis-label", x: L - 4, y: y(yMin), "text-anchor": "end" }, String(yMin)));
    root.appendChild(svg("text", { "class": "axis-label", x: L, y: H - 4 }, String(dayDate(lo).getUTCFullYear())));
    root.appendChild(svg("text", { "class": "axis-label", x: W - R, y: H - 4, "text-anchor": "end" }, String(dayDate(hi).getUTCFullYear())));
    if (points.length) {
      var d = "M" + x(lo - pad) + "," + y(0);
      var current = 0;
      points.forEach(function (p) {
        d += " H" + x(p.day).toFixed(1) + " V" + y(p.total).toFixed(1);
        current = p.total;
      });
      d += " H" + x(hi + pad).toFixed(1);
      root.appendChild(svg("path", { "class": "score-line" + (current < 0 ? " negative" : ""), d: d }));
      points.forEach(function (p) {
        var dot = svg("circle", { "class": "score-dot", cx: x(p.day), cy: y(p.total), r: 2.5 });
        dot.appendChild(svg("title", null, fmtDay(p.day) + ": " + p.total + " — " + p.titles.join("; ")));
        root.appendChild(dot);
      });
    }
    root.appendChild(svg("line", { "class": "at-line", x1: x(atDay), x2: x(atDay), y1: T - 4, y2: H - B + 2 }));
    return root;
  }

  ActorPage.prototype.renderInvolvement = function (involvement) {
    var dl = document.getElementById("involvement");
    clear(dl);
    function pairs(obj) {
      return Object.keys(obj || {}).map(function (k) { return humanize(k) + " " + obj[k]; }).join(", ") || "—";
    }
    dlRow(dl, "Developments", String(involvement.developments));
    dlRow(dl, "By role", pairs(involvement.by_role));
    dlRow(dl, "By category", pairs(involvement.by_category));
    dlRow(dl, "First", involvement.first ? fmtDay(involvement.first) : "—");
    dlRow(dl, "Last", involvement.last ? fmtDay(involvement.last) : "—");
  };

  ActorPage.prototype.renderDevelopments = function () {
    var self = this;
    var list = document.getElementById("actor-developments");
    clear(list);
    (this.timeline || []).forEach(function (dev) {
      var li = el("li", { "data-id": dev.id });
      var roles = (dev.actors || []).filter(function (a) { return a.actor === self.slug; })
        .map(function (a) { return a.role; }).join(", ");
      append(li, el("span", { "class": "when" }, dev.when), " ",
        el("a", { href: devHref(dev.id, { actor: self.slug }), lang: dev.language || null }, dev.title),
        " ", el("span", { "class": "muted" }, roles + "; " + dev.certainty));
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el("li", { "class": "muted" }, "None on record."));
  };

  // ---------------------------------------------------------------- start

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.getAttribute("data-page");
    if (page === "timeline") new TimelinePage().start();
    else if (page === "actor" && document.getElementById("attributes")) {
      new ActorPage(document.body.getAttribute("data-actor")).start();
    }
  });
}());
