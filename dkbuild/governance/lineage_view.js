// The lineage picture of the governance report: zoom (wheel, buttons), pan (drag), search (filter
// and highlight by name) and focus on one node's neighbourhood (click). Inline, no network. The
// state lives in the URL fragment (#focus=ID&search=TEXT&zoom=N), so a view can be linked to.
(function () {
  "use strict";
  var view = document.getElementById("lineage");
  if (!view) return;
  var svg = view.querySelector("svg");
  var search = view.querySelector("#lineage-search");
  var status = view.querySelector("#lineage-status");
  var full = svg.getAttribute("viewBox").split(" ").map(Number);
  var box = full.slice();
  var nodes = {}, up = {}, down = {}, ids = [];
  svg.querySelectorAll("g.node").forEach(function (g) {
    var id = g.getAttribute("data-id");
    nodes[id] = g; up[id] = []; down[id] = []; ids.push(id);
  });
  var edges = Array.prototype.slice.call(svg.querySelectorAll("path.edge"));
  edges.forEach(function (e) {
    var a = e.getAttribute("data-from"), b = e.getAttribute("data-to");
    down[a].push(b); up[b].push(a);
  });

  function show(b) {
    box = b;
    svg.setAttribute("viewBox", b.map(function (v) { return Math.round(v); }).join(" "));
    view.setAttribute("data-zoom", (full[2] / b[2]).toFixed(2));
  }
  function zoom(factor, cx, cy) {      // factor > 1 zooms in, around (cx, cy) in picture units
    var w = Math.min(Math.max(box[2] / factor, 120), full[2] * 2);
    var h = w * box[3] / box[2];
    if (cx === undefined) { cx = box[0] + box[2] / 2; cy = box[1] + box[3] / 2; }
    show([cx - (cx - box[0]) * w / box[2], cy - (cy - box[1]) * h / box[3], w, h]);
  }
  function fit(list) {
    if (!list.length) { show(full.slice()); return; }
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    list.forEach(function (id) {
      var r = nodes[id].querySelector("rect");
      var x = +r.getAttribute("x"), y = +r.getAttribute("y");
      x0 = Math.min(x0, x); y0 = Math.min(y0, y);
      x1 = Math.max(x1, x + +r.getAttribute("width")); y1 = Math.max(y1, y + +r.getAttribute("height"));
    });
    var m = 40;
    show([x0 - m, y0 - m, Math.max(x1 - x0 + 2 * m, 240), Math.max(y1 - y0 + 2 * m, 160)]);
  }
  function mark(keep, cls, other) {    // `cls` on kept nodes and the edges between them, `other` on the rest
    ids.forEach(function (id) {
      nodes[id].classList.remove("match", "dim", "focus", "near", "faded");
      if (keep) nodes[id].classList.add(keep[id] ? keep[id] : other);
    });
    edges.forEach(function (e) {
      e.classList.remove("dim", "near", "faded");
      if (keep) e.classList.add(keep[e.getAttribute("data-from")] && keep[e.getAttribute("data-to")] ? cls : other);
    });
  }
  function around(id, steps) {         // the node, and `steps` hops up- and downstream of it
    var keep = {}, count = {up: 0, down: 0};
    keep[id] = "focus";
    [["up", up], ["down", down]].forEach(function (dir) {
      var frontier = [id];
      for (var i = 0; i < steps; i++) {
        var next = [];
        frontier.forEach(function (n) {
          dir[1][n].forEach(function (m) {
            if (!keep[m]) { keep[m] = "near"; count[dir[0]]++; next.push(m); }
          });
        });
        frontier = next;
      }
    });
    return {keep: keep, count: count};
  }
  function label(id) { return nodes[id].getAttribute("data-name"); }

  function apply() {
    var state = new URLSearchParams(location.hash.slice(1));
    var focus = state.get("focus"), text = (state.get("search") || "").trim().toLowerCase();
    if (search.value.trim().toLowerCase() !== text) search.value = state.get("search") || "";
    mark(null);
    view.removeAttribute("data-focus");
    if (focus && nodes[focus]) {
      var hood = around(focus, 2);
      mark(hood.keep, "near", "faded");
      view.setAttribute("data-focus", focus);
      status.textContent = "focus: " + label(focus) + " — " + hood.count.up + " upstream, " + hood.count.down +
        " downstream within 2 steps (Esc or “Show all” to leave)";
      fit(Object.keys(hood.keep));
    } else if (text) {
      var keep = {}, found = [];
      ids.forEach(function (id) {
        if (label(id).toLowerCase().indexOf(text) >= 0) { keep[id] = "match"; found.push(id); }
      });
      mark(keep, "near", "dim");
      status.textContent = found.length + " of " + ids.length + " nodes match “" + text + "”" +
        (found.length ? "; click one to focus on it" : "");
      fit(found);
    } else {
      status.textContent = ids.length + " nodes. Wheel or +/− to zoom, drag to pan, click a node to focus on it.";
      show(full.slice());
    }
    var z = parseFloat(state.get("zoom") || "");
    if (z > 0) zoom(z * box[2] / full[2]);
  }
  function go(changes) {
    var state = new URLSearchParams(location.hash.slice(1));
    Object.keys(changes).forEach(function (k) {
      if (changes[k]) state.set(k, changes[k]); else state.delete(k);
    });
    state.delete("zoom");
    var hash = state.toString();
    if ("#" + hash !== location.hash && (hash || location.hash)) location.hash = hash;
    apply();                           // now, not when "hashchange" comes (that one re-applies the same)
  }

  function point(ev) {
    var p = svg.createSVGPoint();
    p.x = ev.clientX; p.y = ev.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var p = point(ev);
    zoom(ev.deltaY < 0 ? 1.25 : 0.8, p.x, p.y);
  }, {passive: false});
  var drag = null;
  svg.addEventListener("pointerdown", function (ev) {
    drag = {x: ev.clientX, y: ev.clientY, box: box.slice(), moved: false};
  });
  svg.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    if (!drag.moved) return;
    var scale = Math.max(drag.box[2] / svg.clientWidth, drag.box[3] / svg.clientHeight);
    show([drag.box[0] - dx * scale, drag.box[1] - dy * scale, drag.box[2], drag.box[3]]);
  });
  svg.addEventListener("pointerup", function (ev) {
    var moved = drag && drag.moved;
    drag = null;
    if (moved) return;
    var g = ev.target.closest && ev.target.closest("g.node");
    if (g) go({focus: g.getAttribute("data-id")});
  });
  view.querySelector("#lineage-in").addEventListener("click", function () { zoom(1.5); });
  view.querySelector("#lineage-out").addEventListener("click", function () { zoom(1 / 1.5); });
  view.querySelector("#lineage-fit").addEventListener("click", function () { show(full.slice()); });
  view.querySelector("#lineage-all").addEventListener("click", function () { go({focus: "", search: ""}); });
  search.addEventListener("input", function () { go({search: search.value, focus: ""}); });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") go({focus: ""});
  });
  window.addEventListener("hashchange", apply);
  apply();
})();
