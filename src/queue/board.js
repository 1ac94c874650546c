// The waiting-room board: listens to the clinic's live queue and shows numbers and counters.
(function () {
  "use strict";
  var clinic = location.pathname.split("/").pop();
  var key = new URLSearchParams(location.search).get("key") || "";
  var statusLine = document.getElementById("status");
  var delay = 1000;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render(state) {
    var serving = document.getElementById("serving");
    serving.textContent = "";
    if (!state.now_serving.length) {
      serving.appendChild(el("p", "empty", state.closed ? "The queue is closed for today" : "Please wait to be called"));
    }
    state.now_serving.forEach(function (t) {
      var row = el("div", "call");
      row.appendChild(el("span", "number", t.number));
      row.appendChild(el("span", "counter", t.counter ? "Counter " + t.counter : ""));
      serving.appendChild(row);
    });
    var next = document.getElementById("next");
    next.textContent = "";
    state.next.forEach(function (t) { next.appendChild(el("li", "", t.number)); });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + "/v1/clinics/" + encodeURIComponent(clinic) +
      "/queue/live?board_key=" + encodeURIComponent(key);
    var socket = new WebSocket(url);
    socket.onopen = function () { statusLine.textContent = "Live"; delay = 1000; };
    socket.onmessage = function (m) {
      try { render(JSON.parse(m.data)); } catch (e) { /* ignore a malformed message */ }
    };
    socket.onclose = function (e) {
      // 1008: the board key was replaced; retrying with it cannot succeed.
      if (e.code === 1008) {
        statusLine.textContent = "This board link is no longer valid; open the new one";
        return;
      }
      statusLine.textContent = "Reconnecting…";
      // 1001: the server is restarting; the next process is up at once, so try right away.
      setTimeout(connect, e.code === 1001 ? 250 : delay);
      delay = e.code === 1001 ? 1000 : Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
