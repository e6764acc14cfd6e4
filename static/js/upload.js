// Drag and drop onto the upload form, and a progress bar while htmx sends it.
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const zone = document.getElementById("dropzone");
  const input = form.querySelector("input[type=file]");
  const chosen = document.getElementById("chosen");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");

  function describe() {
    const names = Array.from(input.files).map((f) => f.name);
    chosen.textContent = names.length ? names.length + " file" + (names.length > 1 ? "s" : "") + ": " + names.join(", ") : "";
  }
  input.addEventListener("change", describe);
  ["dragenter", "dragover"].forEach((type) =>
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((type) =>
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => {
    const dt = new DataTransfer();
    Array.from(e.dataTransfer.files).forEach((f) => dt.items.add(f));
    input.files = dt.files;
    describe();
    if (input.files.length) htmx.trigger(form, "submit");
  });
  form.addEventListener("htmx:xhr:progress", (e) => {
    if (!e.detail.lengthComputable) return;
    const p = Math.round((e.detail.loaded / e.detail.total) * 100);
    bar.hidden = false;
    bar.value = p;
    percent.textContent = p < 100 ? "Uploading… " + p + "%" : "Queueing…";
  });
  form.addEventListener("htmx:afterRequest", () => {
    bar.hidden = true;
    percent.textContent = "";
    input.value = "";
    describe();
  });
  // A refused file is a 400 with the per-file lines: show them anyway.
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    if (e.detail.xhr.status === 400 && e.detail.requestConfig && e.detail.requestConfig.elt === form) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
})();
