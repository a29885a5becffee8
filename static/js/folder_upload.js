/* Upload a folder from the browser into the project's content-addressed jobstore, as accli does.
 *
 * Each file is hashed here (SubtleCrypto SHA-1) and named cas_<sha1>.blob; the server says which of them it
 * lacks (POST /api/v1/projects/<slug>/jobstore/missing/), only those are sent (a signed URL each from
 * jobstore-push-url, then a PUT with XMLHttpRequest so the progress bar follows the bytes), and last the
 * manifest {"type": "cas_manifest", "files": [{path, hash, mode}]} named manifest_<sha1>.json. The routine's
 * code is then repo_url s3accjobstore://manifest_<sha1>.json (repo_branch: the manifest's SHA-1).
 *
 * Markup (routine_edit.html): input#folder-input[webkitdirectory], progress#upload-progress, #upload-status,
 * hidden #id_repo_url and #id_repo_branch, and a json_script "upload-config" {missing_url, push_url}.
 */
(function () {
  "use strict";

  var MODE = 33188; /* 0o100644: a browser cannot read file modes */
  var PARALLEL = 3;
  var busy = false;

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sha1(buffer) {
    return window.crypto.subtle.digest("SHA-1", buffer).then(hex);
  }

  function relativePath(file) {
    var parts = (file.webkitRelativePath || file.name).split("/");
    if (parts.length > 1) parts = parts.slice(1); /* the chosen folder's own name is not part of the job folder */
    return parts.join("/");
  }

  function skipped(path) {
    return path.split("/").some(function (part) { return part === ".git" || part === "__pycache__"; });
  }

  function api(method, url, body) {
    var headers = { "X-CSRFToken": window.Acc.csrfToken(), Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok && response.status !== 409) throw new Error(data.detail || "The server answered " + response.status + ".");
          return { status: response.status, data: data };
        });
      });
  }

  function put(url, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", function (event) { onProgress(event.loaded); });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) { onProgress(blob.size); resolve(); return; }
        var detail = "";
        try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (e) { /* not JSON */ }
        reject(new Error(detail || "Upload failed with status " + xhr.status + "."));
      });
      xhr.addEventListener("error", function () { reject(new Error("The upload was interrupted; try again.")); });
      xhr.send(blob);
    });
  }

  function uploadOne(cfg, filename, blob, onProgress) {
    return api("GET", cfg.push_url + "?filename=" + encodeURIComponent(filename)).then(function (answer) {
      if (answer.status === 409) { onProgress(blob.size); return null; } /* stored meanwhile */
      return put(answer.data, blob, onProgress);
    });
  }

  function start(cfg, files, ui) {
    if (!window.crypto || !window.crypto.subtle) {
      return Promise.reject(new Error("This browser cannot hash files here: the platform must be served over https."));
    }
    var entries = [];
    var byHash = {};
    ui.status("Reading " + files.length + " files…");
    return files.reduce(function (chain, file) {
      return chain.then(function () {
        var path = relativePath(file);
        if (!path || skipped(path)) return null;
        return file.arrayBuffer().then(sha1).then(function (hash) {
          entries.push({ path: path, hash: hash, mode: MODE });
          byHash[hash] = file;
        });
      });
    }, Promise.resolve()).then(function () {
      if (!entries.length) throw new Error("The folder has no files.");
      var names = Object.keys(byHash).map(function (h) { return "cas_" + h + ".blob"; });
      return api("POST", cfg.missing_url, { filenames: names });
    }).then(function (answer) {
      var missing = answer.data.missing || [];
      var missingHashes = missing.map(function (name) { return name.slice(4, 44); });
      var stored = entries.filter(function (e) { return missingHashes.indexOf(e.hash) < 0; }).length;
      var total = missingHashes.reduce(function (sum, h) { return sum + byHash[h].size; }, 0);
      var loaded = {};
      var already = stored + " of " + entries.length + " files already stored";
      ui.status(already + "; uploading " + missingHashes.length + "…");
      ui.progress(0, total || 1);
      function progress(hash, bytes) {
        loaded[hash] = bytes;
        var sum = Object.keys(loaded).reduce(function (s, k) { return s + loaded[k]; }, 0);
        ui.progress(sum, total || 1);
      }
      var queue = missingHashes.slice();
      function worker() {
        var hash = queue.shift();
        if (!hash) return Promise.resolve();
        return uploadOne(cfg, "cas_" + hash + ".blob", byHash[hash], function (bytes) { progress(hash, bytes); }).then(worker);
      }
      var workers = [];
      for (var i = 0; i < PARALLEL; i++) workers.push(worker());
      return Promise.all(workers).then(function () { return already; });
    }).then(function (already) {
      entries.sort(function (a, b) { return a.path < b.path ? -1 : 1; });
      var manifest = new Blob([JSON.stringify({ type: "cas_manifest", files: entries })], { type: "application/json" });
      return manifest.arrayBuffer().then(sha1).then(function (hash) {
        return uploadOne(cfg, "manifest_" + hash + ".json", manifest, function () {}).then(function () {
          ui.progress(1, 1);
          return { repoUrl: "s3accjobstore://manifest_" + hash + ".json", sha: hash, already: already, count: entries.length };
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("folder-input");
    var cfg = window.Acc.jsonScript("upload-config");
    if (!input || !cfg) return;
    var bar = document.getElementById("upload-progress");
    var statusLine = document.getElementById("upload-status");
    var repoUrl = document.getElementById("id_repo_url");
    var repoBranch = document.getElementById("id_repo_branch");
    var ui = {
      status: function (text) { statusLine.textContent = text; },
      progress: function (value, max) { bar.hidden = false; bar.max = max; bar.value = value; },
    };
    input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files || []);
      if (!files.length) return;
      busy = true;
      statusLine.classList.remove("field-error");
      repoUrl.value = "";
      repoBranch.value = "";
      start(cfg, files, ui).then(function (done) {
        repoUrl.value = done.repoUrl;
        repoBranch.value = done.sha;
        ui.status("Uploaded: " + done.already + ". The code is " + done.count + " files (manifest " + done.sha.slice(0, 12) + ").");
        statusLine.dataset.done = "1";
      }).catch(function (err) {
        statusLine.classList.add("field-error");
        ui.status(err.message || String(err));
      }).then(function () { busy = false; });
    });
  });

  window.AccFolderUpload = { busy: function () { return busy; } };
})();
