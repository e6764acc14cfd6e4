// Cell heatmap page: draws the server-built plotly figures (JSON in <script type="application/json">)
// and turns a click on a heatmap cell into a click on that cell's link in the table view, so the
// drilldown loads through htmx exactly as the link would (same URL, pushed to history).
(function () {
  "use strict";

  function figureFor(el) {
    const source = document.getElementById(el.dataset.plot);
    return source ? JSON.parse(source.textContent).figure : null;
  }

  function frame(row, col) {
    return {
      type: "rect", xref: "x", yref: "y", line: { color: "#111", width: 3 },
      x0: col - 0.5, x1: col + 0.5, y0: row - 0.5, y1: row + 0.5,
    };
  }

  function draw(el) {
    const fig = figureFor(el);
    if (!fig || !window.Plotly) return;
    window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
    if (el.dataset.cellLinks) {
      el.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (!point || point.z === null || point.z === undefined) return;
        const [row, col] = point.pointIndex;
        const link = document.getElementById(`cell-${row}-${col}`);
        if (!link) return;
        window.Plotly.relayout(el, { shapes: [frame(row, col)] });
        link.click();
      });
    }
  }

  htmx.onLoad((root) => {
    const found = root.matches && root.matches("[data-plot]") ? [root] : [];
    root.querySelectorAll("[data-plot]").forEach((el) => found.push(el));
    found.forEach(draw);
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "cell-drilldown") {
      const panel = document.getElementById("cell-drilldown");
      if (panel) panel.scrollIntoView({ behavior: "smooth", block: "start" });
    }
  });
})();
