/* allocstudy: sortable tables and keyboard-scrollable table wraps, with no dependencies.
   A table marked data-sortable gets a button in each heading; a numeric cell sorts by its
   data-sort value, any other by its text. aria-sort tells screen readers the order.
   Material wraps every table in a .md-typeset__scrollwrap at run time; a wrap whose table is
   wider than the column scrolls, and a keyboard user can scroll it only if it can take the
   focus, so an overflowing wrap becomes a named, focusable region (and stops being one when
   the window grows wide enough). */
(function () {
  "use strict";

  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) return { num: false, v: cell.textContent.trim().toLowerCase() };
    var n = parseFloat(raw);
    return isNaN(n) ? { num: false, v: raw.toLowerCase() } : { num: true, v: n };
  }

  function compare(a, b) {
    if (a.num && b.num) return a.v - b.v;
    if (a.num !== b.num) return a.num ? -1 : 1;
    return a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
  }

  function sortBy(table, index, th) {
    var body = table.tBodies[0];
    var order = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var c = compare(key(r1.cells[index]), key(r2.cells[index]));
      return order === "ascending" ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", order);
  }

  function setup(table) {
    if (table.getAttribute("data-sortable-ready")) return;
    table.setAttribute("data-sortable-ready", "1");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "as-sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, index, th); });
    });
  }

  function regionName(wrap) {
    var table = wrap.querySelector("table");
    var caption = table && table.caption ? table.caption.textContent.trim() : "";
    if (caption) return caption;
    var label = table && table.getAttribute("aria-label");
    if (label) return label;
    var node = wrap;
    while (node && !/^H[1-6]$/.test(node.tagName || "")) {
      node = node.previousElementSibling || node.parentElement;
      if (node && node.tagName === "ARTICLE") break;
    }
    var heading = node && /^H[1-6]$/.test(node.tagName || "") ? node.textContent : "";
    heading = heading.replace(/\u00b6\s*$/, "").trim();
    return heading ? "Table: " + heading + " (scrolls sideways)" : "Table (scrolls sideways)";
  }

  function markScrollable() {
    Array.prototype.forEach.call(
      document.querySelectorAll(".md-typeset__scrollwrap"),
      function (wrap) {
        if (wrap.scrollWidth > wrap.clientWidth + 1) {
          wrap.setAttribute("tabindex", "0");
          wrap.setAttribute("role", "region");
          if (!wrap.getAttribute("aria-label")) wrap.setAttribute("aria-label", regionName(wrap));
        } else if (wrap.getAttribute("role") === "region") {
          wrap.removeAttribute("tabindex");
          wrap.removeAttribute("role");
          wrap.removeAttribute("aria-label");
        }
      }
    );
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), setup);
    markScrollable();
  }

  var pending = null;
  function later() {
    if (pending !== null) return;
    pending = window.setTimeout(function () { pending = null; markScrollable(); }, 50);
  }
  window.addEventListener("resize", later);
  window.addEventListener("load", markScrollable);
  if (typeof MutationObserver === "function") {
    // Material adds its wraps after this script has run: mark them once they exist.
    new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        if (records[i].addedNodes.length) { later(); return; }
      }
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  }
})();
