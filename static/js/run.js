// The run page and the decision detail: chart drawing and zoom, the side panel, the keyboard.
// No inline scripts (CSP): the server puts the figure in <script type="application/json" id="chart-data">.
(function () {
  "use strict";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const panel = () => document.getElementById("panel");
  const isPanel = (el) => el && el.id === "panel" && el.classList.contains("panel");

  // -- chart ----------------------------------------------------------------------------------------
  function drawChart() {
    const data = document.getElementById("chart-data");
    const plot = document.getElementById("plot");
    if (!data || !plot || !window.Plotly || plot.dataset.drawn === "1") return;
    const fig = JSON.parse(data.textContent);
    plot.dataset.drawn = "1";
    Plotly.newPlot(plot, fig.data, fig.layout, fig.config);
    plot.on("plotly_relayout", (ev) => zoomed(ev, fig.meta || {}));
    plot.on("plotly_click", (ev) => {
      const seq = ev.points && ev.points[0] && ev.points[0].customdata;
      if (seq !== null && seq !== undefined) openSeq(seq);
    });
  }

  function zoomed(ev, meta) {
    let lo = ev["xaxis.range[0]"], hi = ev["xaxis.range[1]"];
    if (lo === undefined && Array.isArray(ev["xaxis.range"])) [lo, hi] = ev["xaxis.range"];
    if (lo !== undefined && hi !== undefined) {
      if (meta.axis === "seq") return seqWindow(lo, hi, meta.spans || []);
      setWindow(Math.floor(lo * 1000) / 1000, Math.ceil(hi * 1000) / 1000);
    } else if (ev["xaxis.autorange"]) {
      setWindow("", "", meta.axis === "seq" ? "seq" : null);
    }
  }

  // On the decision-order axis a zoom picks decisions (seq lo..hi); there is no seq filter, so the
  // window becomes the time span of the decisions picked (their t_ms, from the figure's meta.spans),
  // and the axis stays seq.
  function seqWindow(lo, hi, spans) {
    let from = null, to = null;
    for (const [first, last, tLow, tHigh] of spans) {
      if (last < lo || first > hi) continue;
      from = from === null ? tLow : Math.min(from, tLow);
      to = to === null ? tHigh : Math.max(to, tHigh);
    }
    if (from === null) return;
    setWindow(Math.floor(from * 1000) / 1000, Math.ceil(to * 1000) / 1000, "seq");
  }

  let pendingAxis = null; // the axis to keep on the next filter request (a zoom on the seq axis)

  function setWindow(from, to, axis) {
    const form = document.getElementById("filters");
    const a = $("#id_t_from", form), b = $("#id_t_to", form);
    if (!form || !a || !b) return;
    if (String(a.value) === String(from) && String(b.value) === String(to)) return;
    a.value = from;
    b.value = to;
    pendingAxis = axis || null;
    form.requestSubmit();
  }

  // -- the filter form: clean URLs, errors shown on the form --------------------------------------
  document.addEventListener("htmx:configRequest", (e) => {
    if (!e.detail.elt || e.detail.elt.id !== "filters") return;
    const fd = e.detail.formData;
    for (const key of new Set(Array.from(fd.keys()))) {
      const kept = fd.getAll(key).filter((v) => v !== "");
      fd.delete(key);
      kept.forEach((v) => fd.append(key, v));
    }
    // the chart's axis is not an input of the form: keep the page's (or the zoom's) on every request
    const axis = pendingAxis || new URLSearchParams(location.search).get("axis");
    pendingAxis = null;
    if (axis && !fd.has("axis")) fd.append("axis", axis);
  });

  document.addEventListener("htmx:beforeSwap", (e) => {
    const target = e.detail.target;
    if (e.detail.xhr.status === 400 && target && target.id === "run-view") {
      e.detail.shouldSwap = true; // the body names the bad parameter, on the form
      e.detail.isError = false;
    }
    if (target && window.Plotly) {
      const plot = target.id === "plot" ? target : $("#plot", target);
      if (plot && plot.dataset.drawn === "1") Plotly.purge(plot);
    }
  });

  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail.target;
    if (isPanel(target)) {
      target.hidden = false;
      markOpened(target);
    } else if (target && target.id === "run-view") {
      closePanel();
    }
  });

  if (window.htmx) htmx.onLoad(drawChart);
  document.addEventListener("DOMContentLoaded", drawChart);

  // -- rows and the side panel --------------------------------------------------------------------
  function rows() { return $$("#decision-rows tr.row"); }
  function current() { return $("#decision-rows tr.row.current"); }

  function setCurrent(row) {
    rows().forEach((r) => r.classList.remove("current"));
    if (!row) return;
    row.classList.add("current");
    row.scrollIntoView({ block: "nearest" });
  }

  function openRow(row) {
    const link = row && $("a.open", row);
    if (link) link.click();
  }

  function openSeq(seq) {
    const row = $(`#decision-rows tr.row[data-seq="${Number(seq)}"]`);
    if (row) { setCurrent(row); openRow(row); return; }
    const p = panel();
    if (p && window.htmx) {
      htmx.ajax("GET", `${location.pathname}decisions/${Number(seq)}/${location.search}`, { target: "#panel", swap: "innerHTML" });
    }
  }

  function markOpened(p) {
    const article = $("article.decision", p);
    rows().forEach((r) => r.classList.toggle("opened", !!article && r.dataset.seq === article.dataset.seq));
  }

  function closePanel() {
    const p = panel();
    if (!isPanel(p) || p.hidden) return false;
    p.hidden = true;
    p.replaceChildren();
    rows().forEach((r) => r.classList.remove("opened"));
    return true;
  }

  function move(delta) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(current());
    const next = at < 0 ? all[delta > 0 ? 0 : all.length - 1] : all[Math.min(all.length - 1, Math.max(0, at + delta))];
    if (at === all.length - 1 && delta > 0) {
      const more = $("#load-more a");
      if (more) more.click();
    }
    setCurrent(next);
    const p = panel();
    if (isPanel(p) && !p.hidden) openRow(next);
  }

  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-close-panel]")) { closePanel(); return; }
    const copy = e.target.closest("[data-copy]");
    if (copy) { copyText(copy); return; }
    const row = e.target.closest("#decision-rows tr.row");
    if (!row || e.target.closest("a, button, input") || String(window.getSelection() || "")) return;
    setCurrent(row);
    openRow(row);
  });

  function copyText(button) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(() => {
      button.classList.add("copied");
      setTimeout(() => button.classList.remove("copied"), 1500);
    });
  }

  // -- keyboard -------------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
    if (e.key === "Escape") {
      const help = document.getElementById("keys-help");
      if (help && help.open) return; // the dialog closes itself
      if (closePanel()) { e.preventDefault(); return; }
      if (typing) e.target.blur();
      return;
    }
    if (typing) return;
    if (e.key === "j" || e.key === "k") {
      e.preventDefault();
      move(e.key === "j" ? 1 : -1);
    } else if (e.key === "Enter" && current() && !e.target.closest("a, button, summary")) {
      e.preventDefault();
      openRow(current());
    } else if (e.key === "/") {
      const q = document.getElementById("id_q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    }
  });
})();
