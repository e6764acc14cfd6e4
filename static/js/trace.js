// The trace page: draws the lanes figure (JSON from the server, no inline script: CSP), marks the
// picked node in the tree, and moves through the tree with the arrow keys.
(function () {
  "use strict";

  const tree = () => document.getElementById("trace-tree");

  function mark(seq) {
    const root = tree();
    if (!root) return;
    root.querySelectorAll("a.node[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
    root.querySelectorAll("a.node.selected").forEach((a) => a.classList.remove("selected"));
    const leaf = root.querySelector(`li.leaf a.node[data-seq="${seq}"]`) || root.querySelector(`a.node[data-seq="${seq}"]`);
    if (!leaf) return null;
    leaf.setAttribute("aria-current", "true");
    leaf.classList.add("selected");
    for (let d = leaf.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
    return leaf;
  }

  function drawLanes() {
    const data = document.getElementById("trace-lanes-data");
    const plot = document.getElementById("trace-plot");
    if (!data || !plot || !window.Plotly || plot.dataset.drawn === "1") return;
    const fig = JSON.parse(data.textContent);
    plot.dataset.drawn = "1";
    Plotly.newPlot(plot, fig.data, fig.layout, fig.config);
    plot.on("plotly_click", (ev) => {
      const url = ev.points && ev.points[0] && ev.points[0].customdata;
      if (!url) return;
      const seq = new URL(url, location.href).searchParams.get("node");
      const link = mark(seq);
      if (link) {
        link.scrollIntoView({ block: "nearest" });
        link.click();
      } else {
        location.href = url;
      }
    });
  }

  document.addEventListener("click", (ev) => {
    const link = ev.target.closest("#trace-tree a.node, #trace-panel a[data-seq]");
    if (link) mark(link.dataset.seq);
  });

  // Arrow keys: up / down to the previous / next visible node, right opens, left closes (or goes up).
  document.addEventListener("keydown", (ev) => {
    const here = document.activeElement;
    const root = tree();
    if (!root || !here || !root.contains(here) || !here.matches("a.node")) return;
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const visible = Array.from(root.querySelectorAll("a.node")).filter((a) => a.offsetParent !== null);
    const i = visible.indexOf(here);
    // A branch's link sits beside its <details> (the summary opens it, the link selects it).
    const details = here.classList.contains("branch-link") ? here.parentElement.querySelector(":scope > details") : null;
    let next = null;
    if (ev.key === "ArrowDown") next = visible[i + 1];
    else if (ev.key === "ArrowUp") next = visible[i - 1];
    else if (ev.key === "ArrowRight" && details) { details.open = true; next = visible[i + 1] && details.querySelector("ul a.node"); }
    else if (ev.key === "ArrowLeft") {
      if (details && details.open) { details.open = false; next = here; }
      else {
        const up = (details || here).parentElement.closest("details");
        if (up) next = up.parentElement.querySelector(":scope > a.node");
      }
    } else return;
    ev.preventDefault();
    if (next) next.focus();
  });

  // Details toggle: keep the treeitem's aria-expanded true to what is shown.
  document.addEventListener("toggle", (ev) => {
    const li = ev.target.parentElement;
    if (ev.target.tagName === "DETAILS" && li && li.getAttribute("role") === "treeitem") {
      li.setAttribute("aria-expanded", ev.target.open ? "true" : "false");
    }
  }, true);

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawLanes);
  else drawLanes();
})();
