// Small page helpers, no framework (the CSP allows scripts from this origin only):
// the phone menu, local times for <time datetime>, copy buttons, and confirmations on
// forms marked data-confirm (the server acts on the POST alone; this only asks first).
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.remove("no-js");
  root.classList.add("js");

  document.addEventListener("DOMContentLoaded", function () {
    var header = document.getElementById("top");
    var toggle = document.querySelector(".menu-toggle");
    if (header && toggle) {
      toggle.addEventListener("click", function () {
        var open = header.classList.toggle("open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }
    localTimes(document);

    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var el = document.getElementById(btn.getAttribute("data-copy"));
        if (!el) return;
        var text = el.textContent.trim();
        var done = function () { btn.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { select(el); });
        } else {
          select(el);
          try { document.execCommand("copy"); done(); } catch (e) { /* selected for Ctrl+C */ }
        }
      });
    });

    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  });

  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localTimes(scope) {
    scope.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      t.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
      t.title = t.getAttribute("datetime") + " (shown in your local time)";
    });
  }
  window.bedsideLocalTimes = localTimes;
})();
