// The state page (/runs/<id>/state/): one plotly figure per quantity, from the JSON the server put in
// <script type="application/json" id="state-data"> (no inline scripts: CSP). A click on a point opens
// its decision (the point's customdata is the decision's seq).
(function () {
  "use strict";

  function draw() {
    const data = document.getElementById("state-data");
    const page = document.querySelector(".state-page");
    if (!data || !page || !window.Plotly) return;
    const figures = JSON.parse(data.textContent);
    document.querySelectorAll(".state-figure").forEach((el) => {
      const fig = figures[el.dataset.key];
      if (!fig || el.dataset.drawn === "1") return;
      el.dataset.drawn = "1";
      Plotly.newPlot(el, fig.data, fig.layout, fig.config);
      el.on("plotly_click", (ev) => {
        const seq = ev.points && ev.points[0] && ev.points[0].customdata;
        if (seq !== null && seq !== undefined) {
          window.location.href = `/runs/${page.dataset.run}/decisions/${encodeURIComponent(seq)}/`;
        }
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
