// Live job progress on a submission page. Server-sent events from
// /api/submissions/ID/stream push each change (state, step, loss, throughput, queue position,
// ETA); where EventSource is missing or the stream fails, /api/jobs/ID is polled every 3 s.
// The session cookie authenticates both. The page reloads once every job has finished, so
// that the results appear.
(function () {
  "use strict";
  var table = document.querySelector("table[data-stream]");
  if (!table) return;
  var rows = table.querySelectorAll("tr[data-job-id]");
  if (!rows.length) return;
  var sawOpen = false;
  var reloading = false;
  var marks = { done: "✓ ", failed: "✕ ", cancelled: "⊘ ", running: "▶ ", queued: "… " };

  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (s < 86400) return m ? h + " h " + m + " min" : h + " h";
    var d = Math.floor(s / 86400);
    h = Math.floor((s % 86400) / 3600);
    return h ? d + " d " + h + " h" : d + " d";
  }

  function words(job) {
    var p = job.progress || {};
    var parts = [];
    if (job.state === "queued") {
      parts.push(job.queue_position ? (job.queue_position === 1 ? "next in the queue" : "position " + job.queue_position + " in the queue") : "waiting for phase 1");
      parts.push(job.eta_s !== null && job.eta_s !== undefined ? "done in about " + duration(job.eta_s) : "no ETA until a job of this kind has finished once");
    } else if (job.state === "running") {
      parts.push(p.stage || "running");
      if (p.step !== undefined && p.total) parts.push("step " + p.step + " / " + p.total);
      if (p.loss !== undefined && p.loss !== null) parts.push("loss " + Number(p.loss).toFixed(3));
      if (p.throughput) parts.push(Number(p.throughput).toFixed(1) + " rows/s");
      if (job.eta_s !== null && job.eta_s !== undefined) parts.push("about " + duration(job.eta_s) + " left");
    } else if (job.state === "done") {
      parts.push("finished");
    } else if (job.state === "cancelled") {
      parts.push("cancelled");
    } else if (job.state === "failed") {
      parts.push("failed: " + String(job.error_class || "unknown").replace(/_/g, " "));
    }
    return parts.join(" · ");
  }

  function render(job) {
    var el = table.querySelector("tr[data-job-id='" + job.id + "']");
    if (!el) return;
    var bar = el.querySelector(".progress");
    var fill = el.querySelector(".progress > div");
    var state = el.querySelector(".tag");
    var pct = job.fraction === null || job.fraction === undefined ? 0 : Math.round(job.fraction * 100);
    fill.style.width = pct + "%";
    bar.className = "progress " + job.state;
    bar.setAttribute("aria-valuenow", String(pct));
    state.textContent = (marks[job.state] || "") + job.state;
    state.className = "tag " + job.state;
    el.querySelector(".job-meta").textContent = words(job);
    if (job.terminal) {
      el.setAttribute("data-terminal", "1");
    } else {
      sawOpen = true;
    }
  }

  function allDone() {
    return !table.querySelector("tr[data-job-id][data-terminal='0']");
  }

  function finish() {
    if (sawOpen && !reloading) {
      reloading = true;
      window.setTimeout(function () { window.location.reload(); }, 800);
    }
  }

  if (allDone()) return;
  rows.forEach(function (r) { if (r.getAttribute("data-terminal") === "0") sawOpen = true; });

  function poll() {
    var pending = [];
    rows.forEach(function (el) {
      if (el.getAttribute("data-terminal") === "1") return;
      pending.push(
        fetch("/api/jobs/" + el.getAttribute("data-job-id"), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (job) { if (job) render(job); })
          .catch(function () {})
      );
    });
    Promise.all(pending).then(function () {
      if (allDone()) finish(); else window.setTimeout(poll, 3000);
    });
  }

  if (!window.EventSource) { poll(); return; }
  var source = new EventSource(table.getAttribute("data-stream"));
  var failures = 0;
  source.addEventListener("jobs", function (ev) {
    failures = 0;
    var snap = JSON.parse(ev.data);
    (snap.jobs || []).forEach(render);
  });
  source.addEventListener("end", function () { source.close(); finish(); });
  source.addEventListener("gone", function () { source.close(); });
  source.onerror = function () {
    failures += 1;
    if (failures >= 3) { source.close(); poll(); }  // e.g. a proxy that buffers the stream
  };
})();
