/* cytoscape-edgehandles' browser build takes lodash's memoize and throttle from a global `_`; these two small
 * versions do what it asks of them (no lodash on the page). */
(function () {
  "use strict";
  var lodash = window._ || {};
  if (!lodash.memoize) {
    lodash.memoize = function (fn, resolver) {
      var cache = new Map();
      var memo = function () {
        var key = resolver ? resolver.apply(this, arguments) : arguments[0];
        if (!cache.has(key)) cache.set(key, fn.apply(this, arguments));
        return cache.get(key);
      };
      memo.cache = cache;
      return memo;
    };
  }
  if (!lodash.throttle) {
    lodash.throttle = function (fn, wait) {
      var last = 0, timer = null, lastArgs = null, self = null;
      var run = function () {
        last = Date.now();
        timer = null;
        fn.apply(self, lastArgs);
      };
      var throttled = function () {
        lastArgs = arguments;
        self = this;
        var left = wait - (Date.now() - last);
        if (left <= 0) run();
        else if (!timer) timer = setTimeout(run, left);
      };
      throttled.cancel = function () { clearTimeout(timer); timer = null; };
      return throttled;
    };
  }
  window._ = lodash;
})();
