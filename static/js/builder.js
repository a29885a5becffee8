/* The jobflow builder: routines dragged (or added from a list) onto a cytoscape canvas, linked by dragging from
 * one node to another (cytoscape-edgehandles) or from the "Runs after" checkboxes, laid out by dagre. The model
 * (nodes, edges) is the source of truth; the canvas and the side panel are redrawn from it. On save the
 * definition goes to the server as JSON in a hidden field; the server's error comes back with its node.
 * A node's conf override is a json-editor form of its routine's conf schema (static/js/jsoneditor_setup.js, as
 * on the Run form), or a key/value editor for a routine without one; its input mappings are chosen in the
 * project file picker (static/js/picker.js, as on the Run form). */
(function () {
  "use strict";

  var NODE_ID = /^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9_])?$/;
  var RESERVED = ["input_mappings", "output_mappings"];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function slug(name) {
    var text = String(name || "").toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^[^a-z0-9]+/, "");
    text = text.slice(0, 56).replace(/-+$/, "");
    return text || "node";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var cfg = window.Acc.jsonScript("builder-config");
    var holder = document.getElementById("canvas");
    if (!cfg || !holder || !window.cytoscape) return;
    window.cytoscape.use(window.cytoscapeEdgehandles);
    window.cytoscape.use(window.cytoscapeDagre);

    var routines = {};
    cfg.pinned.concat(cfg.routines).forEach(function (r) { routines[r.routine + ":" + r.version] = r; });
    var nodes = {};
    var order = [];
    var edges = [];
    var selected = null;
    var status = document.getElementById("builder-status");
    var panel = document.getElementById("node-panel");
    var nodeSelect = document.getElementById("node-select");

    (cfg.definition.nodes || []).forEach(function (n) {
      nodes[n.id] = Object.assign({ conf: {}, inputs: [], outputs: [], pipe_writes: [], pipe_inputs: {} }, n);
      order.push(n.id);
    });
    (cfg.definition.edges || []).forEach(function (e) { edges.push([e[0], e[1]]); });

    var cy = window.cytoscape({
      container: holder,
      autoungrabify: true,
      boxSelectionEnabled: false,
      maxZoom: 1.2,
      minZoom: 0.3,
      style: [
        { selector: "node", style: {
          "shape": "round-rectangle", "width": 150, "height": 44, "background-color": "#e0e7ff",
          "border-width": 2, "border-color": "#6366f1", "label": "data(label)", "text-wrap": "wrap",
          "text-valign": "center", "font-size": 12, "color": "#1e1b4b" } },
        { selector: "node.selected", style: { "border-width": 4, "border-color": "#1d4ed8", "background-color": "#c7d2fe" } },
        { selector: "node.has-error", style: { "border-color": "#dc2626", "background-color": "#fee2e2" } },
        { selector: "edge", style: {
          "width": 2, "line-color": "#94a3b8", "target-arrow-color": "#94a3b8", "target-arrow-shape": "triangle",
          "curve-style": "bezier" } },
        { selector: ".eh-handle", style: { "background-color": "#1d4ed8", "width": 10, "height": 10, "shape": "ellipse" } },
        { selector: ".eh-preview, .eh-ghost-edge", style: {
          "line-color": "#1d4ed8", "target-arrow-color": "#1d4ed8", "target-arrow-shape": "triangle" } },
        { selector: ".eh-ghost-edge.eh-preview-active", style: { "opacity": 0 } },
      ],
    });
    var eh = cy.edgehandles({
      canConnect: function (source, target) { return !source.same(target); },
      edgeParams: function () { return { data: { drawn: true } }; },
      snap: true,
    });
    eh.enableDrawMode();
    cy.on("ehcomplete", function (event, source, target, added) {
      added.remove();
      // after edgehandles has finished its gesture (it restores the viewport it saved when the drag began)
      var before = source.id(), after = target.id();
      setTimeout(function () { link(before, after); }, 0);
    });
    cy.on("tap", "node", function (event) { select(event.target.id()); });
    window.accBuilder = { cy: cy, nodes: nodes, edges: edges };

    // --- messages -----------------------------------------------------------------------------------
    function clearServerError() {
      if (!cfg.error) return;
      cfg.error = null;
      cy.nodes().removeClass("has-error");
    }

    function say(message, isError) {
      clearServerError();
      status.textContent = "";
      if (message) status.appendChild(el("p", { class: isError ? "error" : "muted", id: "builder-message" }, message));
    }

    // --- the model ------------------------------------------------------------------------------------
    function reaches(from, to) {
      var seen = {}, todo = [from];
      while (todo.length) {
        var at = todo.pop();
        if (at === to) return true;
        if (seen[at]) continue;
        seen[at] = true;
        edges.forEach(function (e) { if (e[0] === at) todo.push(e[1]); });
      }
      return false;
    }

    function hasEdge(before, after) {
      return edges.some(function (e) { return e[0] === before && e[1] === after; });
    }

    function link(before, after) {
      if (before === after || hasEdge(before, after)) return false;
      if (reaches(after, before)) {
        say("Refused: " + after + " cannot run before " + before + " because " + before + " already runs after " +
          after + "; that would make a cycle.", true);
        render();
        return false;
      }
      edges.push([before, after]);
      say(after + " now runs after " + before + ".");
      render();
      return true;
    }

    function unlink(before, after) {
      for (var i = edges.length - 1; i >= 0; i--) {
        if (edges[i][0] === before && edges[i][1] === after) edges.splice(i, 1);
      }
      say(after + " no longer runs after " + before + ".");
      render();
    }

    function addNode(key) {
      var routine = routines[key];
      if (!routine) return;
      var base = slug(routine.name), id = base, n = 1;
      while (nodes[id]) { n += 1; id = base + "-" + n; }
      nodes[id] = { id: id, routine: routine.routine, version: routine.version, conf: {}, inputs: [], outputs: [],
        pipe_writes: [], pipe_inputs: {} };
      order.push(id);
      say("Added node " + id + " (" + routine.name + ").");
      render();
      select(id);
    }

    function removeNode(id) {
      delete nodes[id];
      order.splice(order.indexOf(id), 1);
      for (var i = edges.length - 1; i >= 0; i--) {
        if (edges[i][0] === id || edges[i][1] === id) edges.splice(i, 1);
      }
      selected = null;
      say("Removed node " + id + ".");
      render();
    }

    function rename(oldId, newId) {
      if (newId === oldId) return true;
      if (!NODE_ID.test(newId)) {
        showNodeError("A node name is 1-64 lower-case letters, digits, '_' and '-', starting with a letter or digit.");
        return false;
      }
      if (nodes[newId]) { showNodeError("Another node is already named " + newId + "."); return false; }
      var node = nodes[oldId];
      delete nodes[oldId];
      node.id = newId;
      nodes[newId] = node;
      order[order.indexOf(oldId)] = newId;
      edges.forEach(function (e) { if (e[0] === oldId) e[0] = newId; if (e[1] === oldId) e[1] = newId; });
      selected = newId;
      render();
      return true;
    }

    function definition() {
      return {
        format: "acc-jobflow/1",
        nodes: order.map(function (id) { return nodes[id]; }),
        edges: edges.map(function (e) { return [e[0], e[1]]; }),
      };
    }

    // --- the canvas -------------------------------------------------------------------------------------
    function render() {
      cy.elements().remove();
      cy.add(order.map(function (id) {
        var routine = routines[nodes[id].routine + ":" + nodes[id].version];
        var name = routine ? routine.name : "routine #" + nodes[id].routine;
        return { group: "nodes", data: { id: id, label: name === id ? id : id + "\n" + name } };
      }));
      cy.add(edges.map(function (e) {
        return { group: "edges", data: { id: e[0] + "->" + e[1], source: e[0], target: e[1] } };
      }));
      if (selected && nodes[selected]) cy.getElementById(selected).addClass("selected");
      refreshNodeSelect();
      renderPanel();
      cy.resize(); // the side panel's new content may have changed the canvas' width
      cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 70, fit: false }).run();
      // edgehandles turns panning and zooming off during its gesture, and fit() does nothing then
      var panning = cy.panningEnabled(), zooming = cy.zoomingEnabled();
      cy.panningEnabled(true).zoomingEnabled(true);
      cy.fit(cy.nodes(), 30);
      cy.panningEnabled(panning).zoomingEnabled(zooming);
    }

    function refreshNodeSelect() {
      nodeSelect.textContent = "";
      nodeSelect.appendChild(el("option", { value: "" }, "—"));
      order.forEach(function (id) {
        var option = el("option", { value: id }, id);
        if (id === selected) option.selected = true;
        nodeSelect.appendChild(option);
      });
    }

    function select(id) {
      selected = id && nodes[id] ? id : null;
      cy.nodes().removeClass("selected");
      if (selected) cy.getElementById(selected).addClass("selected");
      refreshNodeSelect();
      renderPanel();
    }

    // --- the node panel ------------------------------------------------------------------------------------
    function showNodeError(message) {
      var box = document.getElementById("node-error");
      box.textContent = message || "";
      box.hidden = !message;
    }

    // --- input mappings: one row per mapping, its container path editable ------------------------------------
    function splitInput(pair) {
      var cut = pair.indexOf(":", "acc://".length);
      return cut < 0 ? [pair, ""] : [pair.slice(0, cut), pair.slice(cut + 1)];
    }

    function renderInputs(node) {
      var list = document.getElementById("input-list");
      list.textContent = "";
      node.inputs.forEach(function (pair, i) {
        var parts = splitInput(pair);
        var li = el("li", { class: "input-row" });
        li.appendChild(el("code", { class: "input-source" }, parts[0]));
        var label = el("label", {}, "Container path ");
        var input = el("input", { type: "text", class: "input-target", "aria-label": "Container path for " + parts[0] });
        input.value = parts[1];
        input.addEventListener("change", function () {
          clearServerError();
          node.inputs[i] = parts[0] + ":" + input.value.trim();
        });
        label.appendChild(input);
        var button = el("button", { type: "button", class: "secondary small", "aria-label": "Remove input " + parts[0] }, "×");
        button.addEventListener("click", function () { node.inputs.splice(i, 1); renderPanel(); });
        li.append(label, button);
        list.appendChild(li);
      });
    }

    function addPicked(entries) {
      var node = selected && nodes[selected];
      if (!node) return;
      var added = [];
      entries.forEach(function (entry) {
        var folder = entry.type === "folder";
        var source = "acc://" + cfg.project + "/" + entry.path + (folder ? "/" : "");
        if (node.inputs.some(function (pair) { return splitInput(pair)[0] === source; })) return;
        node.inputs.push(source + ":/code/inputs/" + entry.path + (folder ? "/" : ""));
        added.push(entry.path);
      });
      clearServerError();
      renderPanel();
      if (added.length) {
        say(node.id + " now reads " + added.join(", ") + ".");
        var targets = document.querySelectorAll("#input-list .input-target");
        if (targets.length) targets[targets.length - 1].focus(); /* its container path, to change it at once */
      }
    }

    function listWithRemove(list, items, label, onRemove) {
      list.textContent = "";
      items.forEach(function (item, i) {
        var li = el("li");
        li.appendChild(el("code", {}, item));
        var button = el("button", { type: "button", class: "secondary small", "aria-label": label + " " + item }, "×");
        button.addEventListener("click", function () { onRemove(i); });
        li.append(" ", button);
        list.appendChild(li);
      });
    }

    function renderPanel() {
      document.getElementById("panel-empty").hidden = !!selected;
      if (!selected) {
        dropConfForm();
        panel.hidden = true;
        document.getElementById("panel-title").textContent = "Node";
        return;
      }
      var node = nodes[selected];
      var routine = routines[node.routine + ":" + node.version] || { name: "routine #" + node.routine, conf: {} };
      panel.hidden = false;
      document.getElementById("panel-title").textContent = "Node " + node.id;
      document.getElementById("node-id").value = node.id;
      document.getElementById("node-routine").textContent =
        "Runs " + routine.name + " v" + node.version + (routine.command ? ": " + routine.command : "");
      renderNewer(node);
      renderAfter(node);
      renderConf(node, routine);
      renderInputs(node);
      listWithRemove(document.getElementById("output-list"), node.outputs, "Remove output", function (i) {
        node.outputs.splice(i, 1); renderPanel();
      });
      listWithRemove(document.getElementById("pipe-write-list"), node.pipe_writes, "Remove pipe file", function (i) {
        node.pipe_writes.splice(i, 1); renderPanel();
      });
      var reads = Object.keys(node.pipe_inputs).map(function (k) { return k + "=" + node.pipe_inputs[k]; });
      listWithRemove(document.getElementById("pipe-input-list"), reads, "Stop reading", function (i) {
        delete node.pipe_inputs[Object.keys(node.pipe_inputs)[i]]; renderPanel();
      });
      var pipeSelect = document.getElementById("pipe-input-path");
      pipeSelect.textContent = "";
      order.forEach(function (id) {
        if (id === node.id || !reaches(id, node.id)) return;
        nodes[id].pipe_writes.forEach(function (path) {
          pipeSelect.appendChild(el("option", { value: path }, path + " (from " + id + ")"));
        });
      });
      if (!pipeSelect.options.length) pipeSelect.appendChild(el("option", { value: "" }, "No upstream node declares a pipe file"));
      var error = cfg.error && cfg.error.node === node.id ? cfg.error.message : "";
      showNodeError(error);
    }

    function renderNewer(node) {
      var box = document.getElementById("node-newer");
      box.textContent = "";
      var latest = cfg.routines.filter(function (r) { return r.routine === node.routine; })[0];
      if (!latest || latest.version === node.version) return;
      var button = el("button", { type: "button", class: "small secondary", id: "use-latest" },
        "Use the latest version, v" + latest.version);
      button.addEventListener("click", function () {
        node.version = latest.version;
        say(node.id + " now runs " + latest.name + " v" + latest.version + ".");
        render();
      });
      box.append(el("span", { class: "muted" }, "This node runs v" + node.version + ". "), button);
    }

    function renderAfter(node) {
      var box = document.getElementById("after-list");
      box.textContent = "";
      var others = order.filter(function (id) { return id !== node.id; });
      if (!others.length) box.appendChild(el("p", { class: "muted" }, "Add another node first."));
      others.forEach(function (id) {
        var label = el("label", { class: "check" });
        var input = el("input", { type: "checkbox", value: id });
        input.checked = hasEdge(id, node.id);
        input.addEventListener("change", function () {
          if (input.checked) { if (!link(id, node.id)) input.checked = false; }
          else unlink(id, node.id);
        });
        label.append(input, " " + id);
        box.appendChild(label);
      });
      edges.filter(function (e) { return e[0] === node.id || e[1] === node.id; }).forEach(function (e) {
        var button = el("button", { type: "button", class: "secondary small" }, "Remove link " + e[0] + " → " + e[1]);
        button.addEventListener("click", function () { unlink(e[0], e[1]); });
        box.appendChild(button);
      });
    }

    function confField(node, name, hint, prop) {
      var label = el("label", {}, (prop && prop.title ? prop.title + " (" + name + ")" : name) + " ");
      var input;
      if (prop && Array.isArray(prop.enum)) {
        input = el("select");
        input.appendChild(el("option", { value: "" }, "default" + (hint !== "" ? " (" + hint + ")" : "")));
        prop.enum.forEach(function (v) {
          var text = typeof v === "string" ? v : JSON.stringify(v);
          input.appendChild(el("option", { value: text }, text));
        });
      } else {
        input = el("input", { type: "text", placeholder: hint === "" ? "" : "default: " + hint });
      }
      input.value = node.conf[name] !== undefined ? node.conf[name] : "";
      input.dataset.conf = name;
      var update = function () {
        clearServerError();
        if (input.value === "") delete node.conf[name];
        else node.conf[name] = input.value;
      };
      input.addEventListener("input", update);
      input.addEventListener("change", update);
      label.appendChild(input);
      if (prop && prop.description) label.appendChild(el("span", { class: "muted hint" }, prop.description));
      return label;
    }

    // --- the conf override: a form generated from the routine's schema --------------------------------------
    var confForm = null; // {editor, node, routine, fields, key} while the panel shows a schema form

    function toEnv(value) {
      return typeof value === "string" ? value : JSON.stringify(value);
    }

    /* a conf string (conf reaches jobs as environment text) as its property's type, when it reads as one */
    function typed(raw, prop) {
      if (typeof raw !== "string" || !prop || typeof prop !== "object") return raw;
      try {
        if (prop.type === "integer" && /^\s*-?\d+\s*$/.test(raw)) return parseInt(raw, 10);
        if (prop.type === "number" && raw.trim() !== "" && !isNaN(Number(raw))) return Number(raw);
        if (prop.type === "boolean" && /^\s*(true|false)\s*$/i.test(raw)) return raw.trim().toLowerCase() === "true";
        if (prop.type === "array" || prop.type === "object") return JSON.parse(raw);
      } catch (e) { /* shown as written; the form marks it */ }
      return raw;
    }

    /* what the node gets when it overrides nothing: the routine's conf, else the schema's default */
    function baseValue(routine, name, prop) {
      if (routine.conf && routine.conf[name] !== undefined) return typed(routine.conf[name], prop);
      return prop && typeof prop === "object" ? prop["default"] : undefined;
    }

    function formFields(node, routine) {
      var props = (routine.schema && routine.schema.properties) || {};
      return Object.keys(props).filter(function (name) {
        var prop = props[name];
        var secret = prop && (prop.format === "password" || prop.writeOnly === true); // never stored in a definition
        return RESERVED.indexOf(name) < 0 && !node.pipe_inputs[name] && prop && typeof prop === "object" && !secret;
      });
    }

    /* the form's value -> the node's override: only what differs from what the routine gives anyway */
    function syncConf() {
      if (!confForm) return;
      var node = confForm.node, props = confForm.routine.schema.properties;
      var value = confForm.editor.getValue() || {};
      var before = JSON.stringify(node.conf);
      confForm.fields.forEach(function (name) {
        if (node.pipe_inputs[name]) return; /* now read from the pipe, not set here */
        var v = value[name];
        if (v === undefined || v === null || v === "" ||
            JSON.stringify(v) === JSON.stringify(baseValue(confForm.routine, name, props[name]))) {
          delete node.conf[name];
        } else {
          node.conf[name] = toEnv(v);
        }
      });
      if (JSON.stringify(node.conf) !== before) clearServerError();
    }

    function dropConfForm() {
      if (!confForm) return;
      syncConf();
      confForm.editor.destroy();
      confForm = null;
      var holder = document.getElementById("conf-editor");
      holder.textContent = "";
      holder.hidden = true;
    }

    function schemaForm(node, routine) {
      var fields = formFields(node, routine);
      var key = [routine.routine, routine.version, fields.join(",")].join("|");
      if (confForm && confForm.node === node && confForm.key === key) return;
      dropConfForm();
      var schema = JSON.parse(JSON.stringify(routine.schema));
      Object.keys(schema.properties).forEach(function (name) {
        if (fields.indexOf(name) < 0) delete schema.properties[name];
      });
      if (Array.isArray(schema.required)) schema.required = schema.required.filter(function (n) { return fields.indexOf(n) >= 0; });
      var values = {};
      fields.forEach(function (name) {
        var prop = schema.properties[name];
        var v = node.conf[name] !== undefined ? typed(node.conf[name], prop) : baseValue(routine, name, routine.schema.properties[name]);
        if (v !== undefined) values[name] = v;
      });
      var holder = document.getElementById("conf-editor");
      holder.hidden = false;
      var editor = window.AccJsonEditor.create(holder, { schema: window.AccJsonEditor.formSchema(schema, values) });
      var form = { editor: editor, node: node, routine: routine, fields: fields, key: key };
      confForm = form;
      editor.on("change", function () { if (confForm === form) syncConf(); });
      editor.on("ready", function () { holder.dataset.ready = "1"; });
    }

    function renderConf(node, routine) {
      var box = document.getElementById("conf-fields");
      box.textContent = "";
      var props = (routine.schema && routine.schema.properties) || {};
      var useForm = !!(routine.schema && window.AccJsonEditor && formFields(node, routine).length);
      document.getElementById("conf-help").textContent = useForm
        ? "A form from the routine's conf schema, filled with the routine's values; what you change is this node's override."
        : "Variables the node sets over the routine's conf (the routine's value shows when empty).";
      if (useForm) schemaForm(node, routine);
      else dropConfForm();
      var names = useForm ? [] : Object.keys(props);
      (useForm ? [] : Object.keys(routine.conf || {})).concat(Object.keys(node.conf)).forEach(function (name) {
        if (useForm && props[name]) return; /* in the form */
        if (names.indexOf(name) < 0 && RESERVED.indexOf(name) < 0 && !node.pipe_inputs[name]) names.push(name);
      });
      names.forEach(function (name) {
        var prop = props[name];
        var fallback = routine.conf && routine.conf[name] !== undefined ? routine.conf[name]
          : prop && prop.default !== undefined ? (typeof prop.default === "string" ? prop.default : JSON.stringify(prop.default)) : "";
        box.appendChild(confField(node, name, fallback, prop));
      });
      if (!routine.schema || routine.schema.additionalProperties !== false) {
        var row = el("div", { class: "row" });
        var nameLabel = el("label", {}, "New variable ");
        var nameInput = el("input", { type: "text", id: "conf-new-name", placeholder: "NAME" });
        nameLabel.appendChild(nameInput);
        var valueLabel = el("label", {}, "Value ");
        var valueInput = el("input", { type: "text", id: "conf-new-value" });
        valueLabel.appendChild(valueInput);
        var add = el("button", { type: "button", class: "small secondary" }, "Add variable");
        add.addEventListener("click", function () {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(nameInput.value)) {
            showNodeError("A variable name is letters, digits and _, not starting with a digit.");
            return;
          }
          node.conf[nameInput.value] = valueInput.value;
          renderPanel();
        });
        row.append(nameLabel, valueLabel, add);
        box.appendChild(row);
      }
      if (!names.length && !useForm && routine.schema) box.appendChild(el("p", { class: "muted" }, "This routine has no settings."));
    }

    // --- controls -----------------------------------------------------------------------------------------
    document.getElementById("add-node").addEventListener("click", function () {
      addNode(document.getElementById("routine-select").value);
    });
    nodeSelect.addEventListener("change", function () { select(nodeSelect.value); });
    document.getElementById("remove-node").addEventListener("click", function () { if (selected) removeNode(selected); });
    document.getElementById("node-id").addEventListener("change", function (event) {
      if (selected && !rename(selected, event.target.value.trim())) event.target.value = selected;
    });

    function addPair(sourceId, targetId, field) {
      var source = document.getElementById(sourceId), target = document.getElementById(targetId);
      if (!selected || !source.value.trim() || !target.value.trim()) {
        showNodeError("Fill in both sides of the mapping.");
        return;
      }
      nodes[selected][field].push(source.value.trim() + ":" + target.value.trim());
      source.value = target.value = "";
      renderPanel();
    }
    document.getElementById("add-input").addEventListener("click", function () { addPair("input-source", "input-target", "inputs"); });
    document.getElementById("pick-inputs").addEventListener("click", function () {
      if (selected && window.AccPicker) window.AccPicker.open(cfg.project, addPicked);
    });
    document.getElementById("add-output").addEventListener("click", function () { addPair("output-source", "output-target", "outputs"); });
    document.getElementById("add-pipe-write").addEventListener("click", function () {
      var input = document.getElementById("pipe-write");
      var path = input.value.trim();
      if (!selected || path.indexOf("/mnt/pipe/") !== 0 || path === "/mnt/pipe/") {
        showNodeError("A pipe file is a path under /mnt/pipe/, e.g. /mnt/pipe/result.txt.");
        return;
      }
      if (nodes[selected].pipe_writes.indexOf(path) < 0) nodes[selected].pipe_writes.push(path);
      input.value = "";
      renderPanel();
    });
    document.getElementById("add-pipe-input").addEventListener("click", function () {
      var path = document.getElementById("pipe-input-path").value;
      var variable = document.getElementById("pipe-input-var").value.trim();
      if (!selected || !path || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) {
        showNodeError("Choose an upstream pipe file and a variable name (letters, digits, _).");
        return;
      }
      nodes[selected].pipe_inputs[variable] = path;
      delete nodes[selected].conf[variable];
      document.getElementById("pipe-input-var").value = "";
      renderPanel();
    });

    // HTML5 drag and drop from the routine list onto the canvas
    Array.prototype.forEach.call(document.querySelectorAll(".palette-item"), function (item) {
      item.addEventListener("dragstart", function (event) {
        event.dataTransfer.setData("text/plain", item.dataset.key);
        event.dataTransfer.effectAllowed = "copy";
      });
    });
    holder.addEventListener("dragover", function (event) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      holder.classList.add("drop-target");
    });
    holder.addEventListener("dragleave", function () { holder.classList.remove("drop-target"); });
    holder.addEventListener("drop", function (event) {
      event.preventDefault();
      holder.classList.remove("drop-target");
      addNode(event.dataTransfer.getData("text/plain"));
    });

    document.getElementById("builder-form").addEventListener("submit", function () {
      syncConf(); /* json-editor tells of a change a frame later: take the form's value now */
      document.getElementById("definition").value = JSON.stringify(definition());
    });

    render();
    if (cfg.error && cfg.error.node && nodes[cfg.error.node]) {
      cy.getElementById(cfg.error.node).addClass("has-error");
      select(cfg.error.node);
      cy.getElementById(cfg.error.node).addClass("has-error");
    }
  });
})();
