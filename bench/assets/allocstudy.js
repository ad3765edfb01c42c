/* allocstudy: sortable tables, with no dependencies.
   A table marked data-sortable gets a button in each heading; a numeric cell sorts by its
   data-sort value, any other by its text. aria-sort tells screen readers the order. */
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

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  }
})();
