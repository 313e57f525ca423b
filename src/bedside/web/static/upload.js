// The bundle upload with a progress bar: the form's own fields go to POST /api/uploads (the
// session cookie authenticates; the browser sends Origin), then the check report page opens.
// Without JavaScript the form posts to /submissions/new and the server redirects the same way.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var box = document.getElementById("upload-progress");
  var bar = box.querySelector(".progress");
  var fill = box.querySelector(".progress > div");
  var status = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");

  function mib(n) { return (n / 1048576).toFixed(1) + " MiB"; }

  form.addEventListener("submit", function (ev) {
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    ev.preventDefault();
    var data = new FormData();
    data.append("bundle", file, file.name);
    var url = form.getAttribute("data-api");  // names the vendor when the owner submits
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.withCredentials = true;
    box.hidden = false;
    errorBox.hidden = true;
    form.querySelector("button[type=submit]").disabled = true;
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((e.loaded / e.total) * 100);
      fill.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
      status.textContent = "Uploading " + mib(e.loaded) + " of " + mib(e.total) + " (" + pct + " %)";
    };
    xhr.upload.onload = function () { status.textContent = "Uploaded; checking the bundle…"; };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 201 && body && body.id) {
        window.location.assign("/submissions/new/" + encodeURIComponent(body.id));
        return;
      }
      var err = (body && body.error) || { message: "the upload failed (HTTP " + xhr.status + ")." };
      errorBox.textContent = err.message + (err.hint ? " " + err.hint : "");
      errorBox.hidden = false;
      bar.className = "progress failed";
      status.textContent = "";
      form.querySelector("button[type=submit]").disabled = false;
    };
    xhr.onerror = function () {
      errorBox.textContent = "The connection to the server was lost during the upload. Try again.";
      errorBox.hidden = false;
      form.querySelector("button[type=submit]").disabled = false;
    };
    xhr.send(data);
  });
})();
