// Run diff page: draws the server-built per-cell heatmap (plotly figure JSON in a
// <script type="application/json">), on first load and whenever htmx swaps the diff in.
(function () {
  "use strict";

  function draw(el) {
    const source = document.getElementById(el.dataset.plot);
    if (!source || !window.Plotly) return;
    const fig = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
  }

  // A fragment refused with a 400 (a filter that does not parse) is not swapped in: show why.
  document.body.addEventListener("htmx:responseError", (event) => {
    const box = document.getElementById("diff-fragment-error");
    if (!box) return;
    box.textContent = event.detail.xhr.responseText || "The request failed.";
    box.hidden = false;
  });
  document.body.addEventListener("htmx:afterSwap", () => {
    const box = document.getElementById("diff-fragment-error");
    if (box) box.hidden = true;
  });

  htmx.onLoad((root) => {
    const found = root.matches && root.matches("[data-plot]") ? [root] : [];
    root.querySelectorAll("[data-plot]").forEach((el) => found.push(el));
    found.forEach(draw);
  });
})();
