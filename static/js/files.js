/* The file explorer: select all, rename dialog, delete confirmation, uploads of files and folders with progress. */
(function () {
  "use strict";

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  /* PUT one file to the files API; progress(loadedBytes) as it goes. Resolves on 201, rejects with the detail. */
  function put(url, file, progress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.setRequestHeader("X-CSRFToken", window.Acc.csrfToken());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = function (e) { progress(e.loaded); };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) return resolve();
        var detail = xhr.statusText;
        try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (e) { /* not JSON */ }
        reject(new Error(file.name + ": " + detail));
      };
      xhr.onerror = function () { reject(new Error(file.name + ": the connection failed")); };
      xhr.send(file);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("entries-form");
    if (!form) return;

    var all = document.getElementById("select-all");
    all.addEventListener("change", function () {
      form.querySelectorAll("input[name=paths]").forEach(function (box) { box.checked = all.checked; });
    });

    var deleteButton = document.getElementById("delete-button");
    if (deleteButton) {
      deleteButton.addEventListener("click", function (event) {
        var n = form.querySelectorAll("input[name=paths]:checked").length;
        if (n && !window.confirm("Delete " + n + " selected item" + (n === 1 ? "" : "s") + "? Folders are deleted with everything in them.")) {
          event.preventDefault();
        }
      });
    }

    var dialog = document.getElementById("rename-dialog");
    form.querySelectorAll("button.rename").forEach(function (button) {
      button.addEventListener("click", function () {
        document.getElementById("rename-path").value = button.dataset.path;
        var name = document.getElementById("rename-name");
        name.value = button.dataset.name;
        dialog.showModal();
        name.select();
      });
    });
    document.getElementById("rename-cancel").addEventListener("click", function () { dialog.close(); });

    /* --- uploads ------------------------------------------------------------------- */
    var tools = document.getElementById("file-tools");
    if (!tools) return;
    var slug = tools.dataset.project;
    var folder = tools.dataset.folder;
    var bar = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");

    function upload(files) {
      files = Array.prototype.slice.call(files);
      if (!files.length) return;
      var total = files.reduce(function (sum, f) { return sum + f.size; }, 0) || 1;
      var done = 0;
      bar.hidden = false;
      var fill = bar.firstElementChild;
      var chain = Promise.resolve();
      files.forEach(function (file, i) {
        chain = chain.then(function () {
          var rel = file.webkitRelativePath || file.name;
          var target = folder ? folder + "/" + rel : rel;
          status.textContent = "Uploading " + (i + 1) + " of " + files.length + ": " + rel;
          return put("/api/v1/projects/" + encodeURIComponent(slug) + "/files/" + encodePath(target), file, function (loaded) {
            fill.style.width = Math.round(((done + loaded) / total) * 100) + "%";
          }).then(function () {
            done += file.size;
            fill.style.width = Math.round((done / total) * 100) + "%";
          });
        });
      });
      chain.then(function () {
        status.textContent = "Uploaded " + files.length + " file" + (files.length === 1 ? "" : "s") + ".";
        window.location.reload();
      }).catch(function (error) {
        status.textContent = "Upload failed: " + error.message;
        status.classList.add("error");
      });
    }

    document.getElementById("upload-files").addEventListener("change", function (e) { upload(e.target.files); });
    document.getElementById("upload-folder").addEventListener("change", function (e) { upload(e.target.files); });
  });
})();
