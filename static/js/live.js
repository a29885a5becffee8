/* One websocket per page at /ws/live/: subscribe to jobs (logs + status) and jobflow runs (node status).
 *
 * Protocol: the client sends {"action":"subscribe","job":id,"after_seq":n} or {"action":"subscribe","run":id};
 * the server answers "subscribed", then sends "log" (catch-up after after_seq, then live) and "status"
 * messages. On reconnect every subscription is sent again with after_seq = the last seq seen, and log
 * messages at or below it are dropped, so no line is lost or shown twice.
 *
 * If the socket cannot be opened at all (a proxy without websockets), the page falls back to polling the
 * REST API; document.body.dataset.live says which transport is in use.
 *
 * The page's "live" marker (#live-state, or options.marker) is hidden once the page's subject (the job it
 * subscribed to, or the root of the run) has a final status: nothing more will come. The server renders it
 * hidden already for a page loaded after the end; a retried run that moves again shows it again.
 */
(function () {
  "use strict";

  var FINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "SKIPPED"];

  function Live(options) {
    options = options || {};
    this.url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/live/";
    this.jobs = {};
    this.runs = {};
    this.ws = null;
    this.attempts = 0;
    this.opened = false;
    this.polling = null;
    this.onstate = options.onstate || function () {};
    this.marker = options.marker || document.getElementById("live-state");
  }

  /* the subject's status: the marker shows only while it may still change */
  Live.prototype._subject = function (status) {
    if (!this.marker || !status) return;
    this.marker.hidden = FINAL.indexOf(status) >= 0;
  };

  Live.prototype.subscribeJob = function (id, handlers) {
    this.jobs[id] = { lastSeq: 0, h: handlers || {} };
    this._send(this._jobMessage(id));
    return this;
  };

  Live.prototype.subscribeRun = function (id, handlers) {
    this.runs[id] = { h: handlers || {} };
    this._send({ action: "subscribe", run: id });
    return this;
  };

  Live.prototype._jobMessage = function (id) {
    return { action: "subscribe", job: Number(id), after_seq: this.jobs[id].lastSeq };
  };

  Live.prototype._send = function (message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  };

  Live.prototype._state = function (state) {
    document.body.dataset.live = state === "polling" ? "polling" : "websocket";
    this.onstate(state);
  };

  Live.prototype.start = function () {
    var self = this;
    this._state(this.opened ? "reconnecting" : "connecting");
    var ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      return this._retry();
    }
    this.ws = ws;
    ws.onopen = function () {
      self.attempts = 0;
      self.opened = true;
      self._state("live");
      Object.keys(self.jobs).forEach(function (id) { self._send(self._jobMessage(id)); });
      Object.keys(self.runs).forEach(function (id) { self._send({ action: "subscribe", run: Number(id) }); });
    };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      self._dispatch(message);
    };
    ws.onclose = function (event) {
      if (self.ws !== ws) return;
      if (event.code === 4401) { /* the session ended: retrying cannot help */
        self.onstate("signed out");
        return;
      }
      self._retry();
    };
    return this;
  };

  Live.prototype._retry = function () {
    var self = this;
    this.attempts += 1;
    if (!this.opened && this.attempts >= 4) return this._poll();
    var delay = Math.min(10000, 500 * Math.pow(2, this.attempts - 1));
    this._state("reconnecting");
    setTimeout(function () { self.start(); }, delay);
  };

  Live.prototype._dispatch = function (m) {
    var job = m.job !== undefined && m.job !== null ? this.jobs[m.job] : null;
    var run = m.run !== undefined && m.run !== null ? this.runs[m.run] : null;
    var rootRun = m.job !== undefined && m.job !== null ? this.runs[m.job] : null;
    if (m.type === "log") {
      if (!job || m.seq <= job.lastSeq) return; /* a repeat after a reconnect */
      job.lastSeq = m.seq;
      if (job.h.log) job.h.log(m);
    } else if (m.type === "status") {
      if (job || (rootRun && !m.node)) this._subject(m.status);
      if (job && job.h.status) job.h.status(m);
      if (run && run.h.status) run.h.status(m);
      else if (rootRun && rootRun.h.status) rootRun.h.status(m);
    } else if (m.type === "subscribed") {
      this._subject(m.status);
      if (m.run !== undefined && m.run !== null && run && run.h.subscribed) run.h.subscribed(m);
      else if (job && job.h.subscribed) job.h.subscribed(m);
    } else if (m.type === "error") {
      var target = run || job;
      if (target && target.h.error) target.h.error(m);
    }
  };

  /* --- fallback: the REST API, once a second ------------------------------------------ */
  Live.prototype._poll = function () {
    var self = this;
    if (this.polling) return;
    this._state("polling");
    var known = {};
    function tick() {
      var pending = [];
      Object.keys(self.jobs).forEach(function (id) {
        var sub = self.jobs[id];
        pending.push(fetch("/api/v1/jobs/" + id + "/logs/?after_seq=" + sub.lastSeq, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (body) {
            if (!body) return;
            body.chunks.forEach(function (c) { self._dispatch({ type: "log", job: Number(id), seq: c.seq, text: c.text }); });
            if (known["job" + id] !== body.status) {
              known["job" + id] = body.status;
              self._dispatch({ type: "status", job: Number(id), status: body.status, reason: "", run: null });
            }
          }));
      });
      Object.keys(self.runs).forEach(function (id) {
        pending.push(fetch("/api/v1/jobs/" + id + "/", { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (body) {
            if (!body) return;
            (body.nodes || []).forEach(function (n) {
              if (known["node" + n.id] !== n.status) {
                known["node" + n.id] = n.status;
                self._dispatch({ type: "status", job: n.id, status: n.status, reason: "", run: Number(id), node: n.node });
              }
            });
            if (known["root" + id] !== body.status) {
              known["root" + id] = body.status;
              self._dispatch({ type: "status", job: Number(id), status: body.status, reason: "", run: null });
            }
          }));
      });
      Promise.all(pending).catch(function () {}).then(function () { self.polling = setTimeout(tick, 1000); });
    }
    this.polling = setTimeout(tick, 0);
  };

  window.AccLive = Live;
})();
