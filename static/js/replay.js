// The replay player (/runs/<id>/replay/). The page works without this file: every control is a
// link or a form carrying ?step=N. With it, the player fetches "frames" (the state panel as HTML,
// the list row, the heatmap data, as of given steps) from the page's JSON endpoint in batches,
// caches them, and shows them at the chosen pace. The server renders and escapes every string;
// this file only moves its fragments into place.
(function () {
  "use strict";

  const ROWS_BEFORE = 10;
  const ROWS_AFTER = 15;
  const BATCH = 60;
  const TICK_MS = 500; // one step per tick at 1x
  const FPS = 20; // frames per second aimed at when pacing by real time
  const IDLE_MS = 1500; // with "skip idle gaps", no wait is longer than this (at the chosen speed)
  const CACHE_MAX = 4000;

  function parseHTML(html) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function typing(target) {
    return target && target.closest && target.closest("input:not([type=range]):not([type=checkbox]), select, textarea");
  }

  class Player {
    constructor(root, data) {
      this.root = root;
      this.data = data;
      this.total = data.total;
      this.step = data.step;
      this.cache = new Map();
      this.inflight = new Map();
      this.playing = false;
      this.timer = null;
      this.queue = []; // upcoming frames when pacing by real time
      this.vt = null; // the virtual clock (log ms) when pacing by real time
      this.stride = 1;
      this.lastUrlUpdate = 0;
      this.zRange = {};
      this.recent = [];
      this.els = {
        play: root.querySelector("#play"),
        speed: root.querySelector("#speed"),
        pacing: root.querySelector("#pacing"),
        skipIdle: root.querySelector("#skip-idle"),
        scrub: root.querySelector("#scrub"),
        stepOut: root.querySelector("#step-out"),
        timeOut: root.querySelector("#time-out"),
        roundOut: root.querySelector("#round-out"),
        stateStep: root.querySelector("#state-step"),
        list: root.querySelector("#replay-list"),
        heatmap: root.querySelector("#replay-heatmap"),
        layer: root.querySelector("#layer"),
        buffering: root.querySelector("#buffering"),
        sampling: root.querySelector("#sampling"),
        loop: root.querySelector("#loop"),
        loopFrom: root.querySelector("#loop-from"),
        loopTo: root.querySelector("#loop-to"),
        exportRound: root.querySelector("#export-round"),
        jumpStep: root.querySelector("#jump-step"),
        jumpTime: root.querySelector("#jump-time"),
      };
      const grid = root.querySelector("#replay-grid");
      this.grid = grid ? JSON.parse(grid.textContent) : null;
      this.bind();
      this.els.play.disabled = false;
      if (this.grid && this.els.layer) {
        // Open on a layer that has values (a GRADIENT_LIMITING-only replay has no AFR errors).
        const filled = (key) => this.grid.z[key].some((row) => row.some((v) => v !== null));
        const first = [...this.els.layer.options].find((o) => filled(o.value));
        if (first && !filled(this.els.layer.value)) this.els.layer.value = first.value;
      }
      if (this.grid) this.drawGrid(this.grid);
      this.drawFigures(null);
      this.scrollList();
      this.fetchFrames({ start: Math.max(0, this.step - ROWS_BEFORE), count: BATCH });
    }

    // --- URLs and fetching ----------------------------------------------------------------

    query(extra) {
      const params = new URLSearchParams();
      for (const [k, v] of this.data.filters) params.append(k, v);
      for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) params.set(k, v);
      return params.toString();
    }

    pageUrl(step) {
      return `${this.data.page_url}?${this.query({ step })}`;
    }

    fetchFrames(args) {
      const url = `${this.data.frames_url}?${this.query(args)}`;
      if (this.inflight.has(url)) return this.inflight.get(url);
      this.setBuffering(true);
      const promise = fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json().then((body) => {
          if (!r.ok) throw new Error(body.detail || `HTTP ${r.status}`);
          if (!body.frames) throw new Error("the replay is being prepared again: reload in a moment");
          return body;
        }))
        .then((body) => {
          for (const f of body.frames) this.cache.set(f.step, f);
          this.trimCache();
          return body;
        })
        .catch((err) => {
          this.els.buffering.textContent = `could not load: ${err.message}`;
          this.els.buffering.hidden = false;
          this.pause();
          throw err;
        })
        .finally(() => {
          this.inflight.delete(url);
          if (!this.inflight.size) this.setBuffering(false);
        });
      this.inflight.set(url, promise);
      return promise;
    }

    trimCache() {
      if (this.cache.size <= CACHE_MAX) return;
      const far = [...this.cache.keys()].sort((a, b) => Math.abs(b - this.step) - Math.abs(a - this.step));
      for (const k of far.slice(0, this.cache.size - CACHE_MAX / 2)) this.cache.delete(k);
    }

    setBuffering(on) {
      if (on) this.els.buffering.textContent = "loading…";
      this.els.buffering.hidden = !on;
    }

    // --- showing a step -------------------------------------------------------------------

    seek(step, { push = false } = {}) {
      step = Math.max(0, Math.min(this.total, step));
      const frame = this.cache.get(step);
      if (frame) {
        this.render(frame, push);
        return Promise.resolve(frame);
      }
      return this.fetchFrames({ start: Math.max(0, step - ROWS_BEFORE), count: BATCH }).then(() => {
        const f = this.cache.get(step);
        if (f) this.render(f, push);
        return f;
      });
    }

    seekTime(text) {
      return this.fetchFrames({ t: text, back: ROWS_BEFORE, count: BATCH }).then((body) => this.seek(body.at, { push: true }));
    }

    render(frame, push) {
      this.step = frame.step;
      this.recent = [...this.recent.filter((f) => f.step < frame.step).slice(-ROWS_BEFORE), frame];
      const state = document.getElementById("replay-state");
      if (state) state.replaceWith(parseHTML(frame.state));
      const notes = document.getElementById("replay-notes"); // the notes of the decision at this step
      if (notes && frame.notes) notes.replaceWith(parseHTML(frame.notes));
      this.drawFigures(state);
      if (frame.grid) this.drawGrid(frame.grid);
      this.renderList();
      const e = this.els;
      e.stepOut.textContent = `Step ${frame.step} of ${this.total}` + (frame.seq === null ? "" : ` · decision #${frame.seq}`);
      e.timeOut.textContent = frame.t_text; // times and rounds come formatted from the server (text.clock)
      if (e.roundOut) e.roundOut.textContent = frame.round_text;
      e.stateStep.textContent = frame.step;
      if (document.activeElement !== e.scrub) e.scrub.value = frame.step;
      if (e.exportRound && document.activeElement !== e.exportRound && frame.round !== null) e.exportRound.value = frame.round;
      const stepInput = e.jumpStep && e.jumpStep.querySelector("input[name=step]");
      if (stepInput && document.activeElement !== stepInput) stepInput.value = frame.step;
      this.updateLinks();
      this.updateUrl(push);
    }

    renderList() {
      let frames = [];
      for (let s = Math.max(1, this.step - ROWS_BEFORE); s <= Math.min(this.total, this.step + ROWS_AFTER); s++) {
        const f = this.cache.get(s);
        if (f && f.row) frames.push(f);
      }
      if (frames.length < 3 && this.recent.length) {
        // Sampled playback: the steps just shown and the ones queued next.
        frames = [...this.recent, ...this.queue.slice(0, ROWS_AFTER)].filter((f) => f.row);
      }
      const items = frames.map((f) => {
        if (!f.rowEl) f.rowEl = parseHTML(f.row);
        f.rowEl.classList.toggle("current", f.step === this.step);
        return f.rowEl;
      });
      if (items.length) this.els.list.replaceChildren(...items);
      else this.els.list.querySelectorAll("li").forEach((li) => li.classList.toggle("current", Number(li.dataset.step) === this.step));
      this.scrollList();
    }

    scrollList() {
      const list = this.els.list;
      const cur = list.querySelector("li.current");
      if (!cur) return;
      const top = cur.offsetTop; // the list is position: relative, so this is within it
      if (top < list.scrollTop || top + cur.offsetHeight > list.scrollTop + list.clientHeight) {
        list.scrollTop = Math.max(0, top - list.clientHeight / 3);
      }
    }

    updateLinks() {
      const targets = { prev: Math.max(0, this.step - 1), next: Math.min(this.total, this.step + 1) };
      this.root.querySelectorAll(".transport a[data-nav]").forEach((a) => {
        const s = targets[a.dataset.nav];
        a.dataset.step = s;
        a.href = this.pageUrl(s);
      });
    }

    updateUrl(push) {
      const url = this.pageUrl(this.step);
      const now = performance.now();
      if (push) {
        history.pushState({ step: this.step }, "", url);
      } else if (!this.playing || now - this.lastUrlUpdate > 250) {
        history.replaceState({ step: this.step }, "", url);
        this.lastUrlUpdate = now;
      }
    }

    // --- the heatmap ----------------------------------------------------------------------

    // A state panel's own figures (a study log's writing timeline): a ".plotly-figure" slot followed
    // by its figure's JSON. A figure drawn in the panel before is moved into the new one, and
    // redrawn only when its figure changed.
    drawFigures(old) {
      const state = document.getElementById("replay-state");
      if (!window.Plotly || !state) return;
      state.querySelectorAll(".plotly-figure").forEach((slot) => {
        const json = slot.nextElementSibling ? slot.nextElementSibling.textContent : "";
        const prev = old && old.querySelector(`.plotly-figure[data-figure="${slot.dataset.figure}"]`);
        const target = prev && prev.dataset.drawn ? prev : slot;
        if (target !== slot) slot.replaceWith(target);
        if (target.dataset.drawn === json) return;
        const figure = JSON.parse(json);
        window.Plotly.react(target, figure.data, figure.layout, { displaylogo: false, responsive: true });
        target.dataset.drawn = json;
      });
    }

    // The grid comes with its figure from viewer/heatmap.py (orientation, axis names, escaping); the
    // player fills in the chosen layer's values on that layer's scale.
    drawGrid(grid) {
      if (!window.Plotly || !this.els.heatmap) return;
      this.grid = grid;
      const layer = this.els.layer ? this.els.layer.value : null;
      const z = grid.z[layer];
      if (!z) return;
      let top = this.zRange[layer] || 0;
      for (const row of z) for (const v of row) if (v !== null && Math.abs(v) > top) top = Math.abs(v);
      this.zRange[layer] = top; // only grows while playing, so colours stay comparable
      const signed = this.data.signed.includes(layer);
      const label = this.els.layer.selectedOptions[0].textContent;
      const base = grid.figure.data[0];
      const heat = {
        ...base, z, customdata: grid.text, hovertemplate: "%{customdata}<extra></extra>",
        colorscale: signed ? this.data.scales.diverging : this.data.scales.sequential,
        zmin: signed ? -(top || 1) : 0, zmax: top || 1, zmid: signed ? 0 : undefined,
        colorbar: { ...base.colorbar, title: { text: label, side: "right" } },
      };
      const marks = {
        type: "scatter", mode: "markers", hoverinfo: "skip", showlegend: false,
        x: grid.anomalies.map(([, j]) => base.x[j]), y: grid.anomalies.map(([i]) => base.y[i]),
        marker: { symbol: "circle-open", size: 18, color: "#111", line: { width: 2 } },
      };
      // An invisible point per row keeps the whole grid drawn while a layer is still empty.
      const frame = {
        type: "scatter", mode: "markers", hoverinfo: "skip", showlegend: false, opacity: 0,
        x: base.y.map((_, i) => base.x[i % base.x.length]), y: base.y,
      };
      const empty = !z.some((row) => row.some((v) => v !== null));
      const layout = {
        ...grid.figure.layout,
        annotations: empty ? [{ text: `No ${label} values as of this step`, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
          showarrow: false, font: { color: "#6b7385", size: 14 } }] : [],
        transition: { duration: 0 },
      };
      window.Plotly.react(this.els.heatmap, [frame, heat, marks], layout, { displaylogo: false, responsive: true });
    }

    // --- playing --------------------------------------------------------------------------

    speed() {
      return Number(this.els.speed.value) || 1;
    }

    loopRange() {
      if (!this.els.loop.checked) return null;
      const a = Math.max(0, Number(this.els.loopFrom.value) || 0);
      const b = Math.min(this.total, Number(this.els.loopTo.value) || this.total);
      return a < b ? [a, b] : null;
    }

    play() {
      if (this.playing) return;
      const loop = this.loopRange();
      if (loop && (this.step < loop[0] || this.step >= loop[1])) this.seek(loop[0]);
      else if (this.step >= this.total) this.seek(0);
      this.playing = true;
      this.els.play.textContent = "❚❚ Pause";
      this.els.play.setAttribute("aria-label", "Pause");
      this.root.classList.add("playing");
      this.queue = [];
      this.vt = null;
      this.lastReal = performance.now();
      this.stepClock = null;
      if (this.els.pacing.value === "time") this.timeLoop();
      else this.stepLoop();
    }

    pause() {
      const was = this.playing;
      this.playing = false;
      clearTimeout(this.timer);
      cancelAnimationFrame(this.raf);
      if (!this.els.play) return;
      this.els.play.textContent = "▶ Play";
      this.els.play.setAttribute("aria-label", "Play");
      this.root.classList.remove("playing");
      this.els.sampling.hidden = true;
      this.updateUrl(false);
      if (was) this.fillWindow();
    }

    // After sampled playback the rows around the step may be missing: load them.
    fillWindow() {
      const from = Math.max(1, this.step - ROWS_BEFORE);
      const to = Math.min(this.total, this.step + ROWS_AFTER);
      for (let s = from; s <= to; s++) {
        if (!this.cache.has(s)) {
          this.fetchFrames({ start: from, count: BATCH }).then(() => this.renderList()).catch(() => {});
          return;
        }
      }
    }

    toggle() {
      if (this.playing) this.pause();
      else this.play();
    }

    nextStepFrom(step) {
      const loop = this.loopRange();
      if (loop && step + 1 > loop[1]) return loop[0];
      return step + 1;
    }

    // One step per tick (TICK_MS / speed apart): a clock counting steps. When drawing cannot keep up,
    // intermediate steps are skipped on screen (never in the state: every frame is a full state).
    stepLoop() {
      if (!this.playing) return;
      const now = performance.now();
      if (this.stepClock === null) this.stepClock = this.step;
      else this.stepClock += ((now - this.lastReal) * this.speed()) / TICK_MS;
      this.lastReal = now;
      let target = Math.floor(this.stepClock);
      const loop = this.loopRange();
      if (loop && target > loop[1]) {
        target = loop[0];
        this.stepClock = loop[0];
      }
      target = Math.min(target, this.total);
      this.prefetch(target + 1);
      if (target !== this.step) {
        const frame = this.cache.get(target);
        if (frame) {
          this.render(frame, false);
        } else {
          this.stepClock = Math.min(this.stepClock, this.step + 1); // wait for the frames to arrive
        }
      }
      if (this.step >= this.total && !loop) return this.pause();
      this.raf = requestAnimationFrame(() => this.stepLoop());
    }

    // Keeps the next BATCH / 2 steps loaded, one request at a time.
    prefetch(from) {
      if (this.prefetching) return;
      let missing = null;
      for (let s = from; s <= Math.min(this.total, from + BATCH / 2); s++) {
        if (!this.cache.has(s)) { missing = s; break; }
      }
      if (missing === null) return;
      this.prefetching = true;
      this.fetchFrames({ start: missing, count: BATCH })
        .catch(() => {})
        .finally(() => { this.prefetching = false; });
    }

    // Real time gaps: a virtual clock runs at `speed`; the latest frame at or before it shows.
    // Dense runs are sampled (every `stride` steps) so that about FPS frames a second are fetched.
    timeLoop() {
      if (!this.playing) return;
      const now = performance.now();
      const current = this.cache.get(this.step);
      if (this.vt === null) this.vt = current && current.t_ms !== null ? current.t_ms : this.data.t_first || 0;
      else this.vt += (now - this.lastReal) * this.speed();
      this.lastReal = now;
      this.refill();
      let shown = null;
      while (this.queue.length && (this.queue[0].t_ms === null || this.queue[0].t_ms <= this.vt)) {
        shown = this.queue.shift();
      }
      const loop = this.loopRange();
      if (shown) {
        if (loop && shown.step >= loop[1]) {
          this.queue = [];
          this.seek(loop[0]).then((f) => { this.vt = f && f.t_ms !== null ? f.t_ms : this.vt; });
        } else {
          this.render(shown, false);
        }
      } else if (this.queue.length && this.els.skipIdle.checked) {
        const wait = (this.queue[0].t_ms - this.vt) / this.speed();
        if (wait > IDLE_MS) this.vt = this.queue[0].t_ms - IDLE_MS * this.speed() * 0.2;
      }
      if (this.step >= this.total && !this.queue.length) return this.pause();
      this.raf = requestAnimationFrame(() => this.timeLoop());
    }

    refill() {
      if (this.queue.length > BATCH / 3 || this.refilling) return;
      const after = this.queue.length ? this.queue[this.queue.length - 1].step : this.step;
      if (after >= this.total) return;
      this.refilling = true;
      this.fetchFrames({ start: after + this.stride, count: BATCH, stride: this.stride })
        .then((body) => {
          if (!this.playing) return;
          const frames = body.frames.filter((f) => f.step > after);
          this.queue.push(...frames);
          this.adjustStride(frames);
        })
        .catch(() => {})
        .finally(() => { this.refilling = false; });
    }

    adjustStride(frames) {
      const timed = frames.filter((f) => f.t_ms !== null);
      if (timed.length >= 2) {
        const a = timed[0];
        const b = timed[timed.length - 1];
        const span = b.t_ms - a.t_ms;
        const perMs = span > 0 ? (b.step - a.step) / span : Infinity;
        const wanted = (perMs * this.speed() * 1000) / FPS;
        this.stride = Math.max(1, Math.min(2000, Math.round(Number.isFinite(wanted) ? wanted : this.stride * 4)));
      }
      this.els.sampling.hidden = this.stride === 1;
      this.els.sampling.textContent = `showing every ${this.stride}th step at this speed`;
    }

    // --- wiring ---------------------------------------------------------------------------

    bind() {
      const e = this.els;
      e.play.addEventListener("click", () => this.toggle());
      e.pacing.addEventListener("change", () => { if (this.playing) { this.pause(); this.play(); } });
      e.speed.addEventListener("change", () => { this.stride = 1; this.queue = []; });
      this.root.addEventListener("click", (ev) => {
        const a = ev.target.closest("a[data-step]");
        if (!a || !this.root.contains(a) || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
        ev.preventDefault();
        this.pause();
        this.seek(Number(a.dataset.step), { push: true });
      });
      let scrubTimer = null;
      e.scrub.addEventListener("input", () => {
        this.pause();
        e.stepOut.textContent = `Step ${e.scrub.value} of ${this.total}`;
        clearTimeout(scrubTimer);
        scrubTimer = setTimeout(() => this.seek(Number(e.scrub.value)), 60);
      });
      e.scrub.addEventListener("change", () => this.seek(Number(e.scrub.value), { push: true }));
      if (e.jumpStep) {
        e.jumpStep.addEventListener("submit", (ev) => {
          ev.preventDefault();
          this.pause();
          this.seek(Number(e.jumpStep.querySelector("input[name=step]").value), { push: true });
        });
      }
      if (e.jumpTime) {
        e.jumpTime.addEventListener("submit", (ev) => {
          const value = e.jumpTime.querySelector("input[name=t]").value.trim();
          if (!value) return;
          ev.preventDefault();
          this.pause();
          this.seekTime(value).catch(() => {});
        });
      }
      if (e.layer) e.layer.addEventListener("change", () => this.grid && this.drawGrid(this.grid));
      this.onKey = (ev) => {
        if (!document.body.contains(this.root)) return document.removeEventListener("keydown", this.onKey);
        if (typing(ev.target) || ev.altKey || ev.ctrlKey || ev.metaKey) return;
        const keys = {
          " ": () => this.toggle(),
          ArrowLeft: () => { this.pause(); this.seek(this.step - 1); },
          ArrowRight: () => { this.pause(); this.seek(this.step + 1); },
          Home: () => { this.pause(); this.seek(0, { push: true }); },
          End: () => { this.pause(); this.seek(this.total, { push: true }); },
        };
        const act = keys[ev.key];
        if (!act || (ev.target === e.scrub && ev.key !== " ")) return;
        ev.preventDefault();
        act();
      };
      document.addEventListener("keydown", this.onKey);
      this.onPop = (ev) => {
        if (!document.body.contains(this.root)) return window.removeEventListener("popstate", this.onPop);
        if (ev.state && typeof ev.state.step === "number") {
          this.pause();
          this.seek(ev.state.step);
        }
      };
      window.addEventListener("popstate", this.onPop);
    }
  }

  function init(root) {
    const main = root.id === "replay-main" ? root : root.querySelector && root.querySelector("#replay-main");
    const dataEl = main && main.querySelector("#replay-data");
    if (!dataEl || main.player) return;
    main.player = new Player(main, JSON.parse(dataEl.textContent));
    window.replayPlayer = main.player; // for the browser tests
  }

  if (window.htmx) window.htmx.onLoad(init);
  else init(document);
})();
