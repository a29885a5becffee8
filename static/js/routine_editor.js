/* The routine editor (templates/web/routine_edit.html): the stack and code choices show their own fields, the
 * default conf table gains and loses rows, and the form is not sent while a folder upload is still running.
 * The schema editor (schema_editor.js) and the folder upload (folder_upload.js) enhance their own parts. */
(function () {
  "use strict";

  function showChosen(form, group) {
    var chosen = form.querySelector('input[name="' + group + '"]:checked');
    var target = chosen ? chosen.dataset.shows : "";
    form.querySelectorAll('[data-panel="' + group + '"]').forEach(function (panel) {
      panel.hidden = panel.id !== target;
    });
  }

  function renumber(rows) {
    rows.querySelectorAll("tr").forEach(function (row, i) {
      var n = i + 1;
      row.querySelector('[name="conf_key"]').setAttribute("aria-label", "Conf name " + n);
      row.querySelector('[name="conf_value"]').setAttribute("aria-label", "Conf value " + n);
      row.querySelector(".conf-remove").setAttribute("aria-label", "Remove conf row " + n);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("routine-form");
    if (!form) return;
    ["stack_kind", "code_kind"].forEach(function (group) {
      form.querySelectorAll('input[name="' + group + '"]').forEach(function (radio) {
        radio.addEventListener("change", function () { showChosen(form, group); });
      });
      showChosen(form, group);
    });

    var rows = document.getElementById("conf-rows");
    var template = document.getElementById("conf-row-template");
    document.getElementById("conf-add").addEventListener("click", function () {
      rows.appendChild(template.content.cloneNode(true));
      renumber(rows);
      rows.lastElementChild.querySelector('[name="conf_key"]').focus();
    });
    rows.addEventListener("click", function (event) {
      var button = event.target.closest(".conf-remove");
      if (!button) return;
      button.closest("tr").remove();
      renumber(rows);
    });

    form.addEventListener("submit", function (event) {
      var summary = document.getElementById("form-errors");
      if (window.AccFolderUpload && window.AccFolderUpload.busy()) {
        event.preventDefault();
        summary.textContent = "Wait until the folder upload is done, then save.";
        return;
      }
      var button = document.getElementById("save-button");
      button.disabled = true;
      button.textContent = "Saving…";
    });
  });
})();
