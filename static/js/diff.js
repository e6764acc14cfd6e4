// Run diff page: draws the server-built per-cell heatmap (plotly figure JSON in a
// <script type="application/json">), on first load and whenever htmx swaps the diff in.
// A refused fragment (a filter that does not parse) is shown by app.js, as on every page.
(function () {
  "use strict";

  function draw(el) {
    const source = document.getElementById(el.dataset.plot);
    if (!source || !window.Plotly) return;
    const fig = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
  }

  htmx.onLoad((root) => {
    const found = root.matches && root.matches("[data-plot]") ? [root] : [];
    root.querySelectorAll("[data-plot]").forEach((el) => found.push(el));
    found.forEach(draw);
  });
})();
