// Live job progress: poll /api/jobs/{id} (the session cookie authenticates) and update the bar.
// Reloads the page once a job finishes so that its results appear.
(function () {
  "use strict";
  var bars = document.querySelectorAll("[data-job-id]");
  if (!bars.length) return;
  var anyRunning = false;

  function render(el, job) {
    var bar = el.querySelector(".progress");
    var fill = el.querySelector(".progress > div");
    var text = el.querySelector(".job-meta");
    var state = el.querySelector(".tag");
    var pct = job.fraction === null || job.fraction === undefined ? 0 : Math.round(job.fraction * 100);
    fill.style.width = pct + "%";
    bar.className = "progress " + job.state;
    state.textContent = job.state;
    state.className = "tag " + job.state;
    var p = job.progress || {};
    var parts = [];
    if (p.stage) parts.push(p.stage);
    if (p.step !== undefined && p.total) parts.push("step " + p.step + " / " + p.total);
    if (p.loss !== undefined && p.loss !== null) parts.push("loss " + Number(p.loss).toFixed(3));
    if (p.eta_s) parts.push("about " + Math.max(1, Math.round(p.eta_s / 60)) + " min left");
    if (job.error_class) parts.push("error: " + job.error_class);
    text.textContent = parts.length ? parts.join(" · ") : pct + " %";
  }

  function poll() {
    var pending = [];
    bars.forEach(function (el) {
      if (el.getAttribute("data-terminal") === "1") return;
      pending.push(
        fetch("/api/jobs/" + el.getAttribute("data-job-id"), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (job) {
            if (!job) return;
            render(el, job);
            if (job.terminal) {
              el.setAttribute("data-terminal", "1");
              if (anyRunning) window.setTimeout(function () { window.location.reload(); }, 800);
            }
          })
          .catch(function () {})
      );
    });
    Promise.all(pending).then(function () {
      var open = document.querySelectorAll("[data-job-id][data-terminal='0']").length;
      if (open) { anyRunning = true; window.setTimeout(poll, 2000); }
    });
  }
  poll();
})();
